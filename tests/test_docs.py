"""The README and docs/ stay true to the code: settings tables, the README's shape, links."""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from miner.__main__ import build_parser as miner_parser
from miner.settings import MinerSettings
from proxy.__main__ import build_parser as lanes_parser
from proxy.ollama import INFERENCE_PATHS
from proxy.settings import ProxySettings
from proxy.simulator.settings import SimulatorSettings
from proxy.stats.metrics import Metrics
from proxy.stats.schema import StatsView
from tests.markdown import anchors, code_blocks, links, tables, ticks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SNAPSHOT = ROOT / "tests" / "stats" / "data" / "stats_snapshot.json"
PAGES = sorted(DOCS.glob("*.md"))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Command:
    """A command whose settings a docs page documents in full."""

    settings: type[BaseSettings]
    page: str
    section: str  # its table in the config file
    parser: Callable[[], argparse.ArgumentParser]
    argv: tuple[str, ...]  # the subcommand whose --help lists the flags
    flags: dict[str, str] = field(default_factory=dict)  # fields whose flag is not --field-name

    @property
    def prefix(self) -> str:
        return str(self.settings.model_config.get("env_prefix", ""))

    def flag(self, name: str) -> str:
        return self.flags.get(name, "--" + name.replace("_", "-"))


COMMANDS = (
    Command(
        ProxySettings,
        "serve.md",
        "serve",
        lanes_parser,
        ("serve",),
        {"client_priorities": "--client-priority", "client_weights": "--client-weight"},
    ),
    Command(
        SimulatorSettings,
        "simulator.md",
        "simulate",
        lanes_parser,
        ("simulate",),
        {"version": "--ollama-version", "models": "--model"},
    ),
    Command(MinerSettings, "miner.md", "miner", miner_parser, ("run",)),
)


@dataclass(frozen=True)
class Row:
    """One row of a settings table (a table with an `Env` column)."""

    where: str
    name: str
    section: str
    flag: str
    env: str
    default: str


def _first_word(cell: str) -> str:
    spans = ticks(cell)
    return spans[0] if spans else (cell.split() or [""])[0].rstrip(",;:.")


def _section(cells: list[str]) -> str:
    for span in (s for cell in cells for s in ticks(cell)):
        if match := re.match(r"^\[+(\w+)", span):
            return match.group(1)
    return ""


def _rows(path: Path) -> Iterator[Row]:
    for table in tables(_text(path)):
        env, flag, key, default = (table.column(w) for w in ("Env", "Flag", "key", "Default"))
        if env is None:
            continue
        if flag is None or key is None or default is None:
            raise AssertionError(f"{path.name}: a settings table lacks a column: {table.header}")
        for cells in table.rows:
            names = [s for s in ticks(cells[key]) if not s.startswith("[")]
            yield Row(
                where=f"{path.relative_to(ROOT)}: {cells[0]}",
                name=names[0] if names else "",
                section=_section([cells[key], table.header[key]]),
                flag=(ticks(cells[flag]) or [""])[0].split(" ")[0],
                env=_first_word(cells[env]),
                default=_first_word(cells[default]),
            )


def _all_rows() -> list[Row]:
    return [row for path in [README, *PAGES] for row in _rows(path)]


def _command_of(row: Row) -> Command | None:
    by_prefix = sorted(COMMANDS, key=lambda c: len(c.prefix), reverse=True)
    return next((c for c in by_prefix if row.env.startswith(c.prefix)), None)


@functools.cache
def _help(page: str) -> str:
    """The `--help` text of the command documented on `page`."""
    command = next(c for c in COMMANDS if c.page == page)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        command.parser().parse_args([*command.argv, "--help"])
    return out.getvalue()


def _shown(value: object) -> str:
    """A default as the tables write it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class TestSettingsTables:
    @pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.page)
    def test_every_setting_has_one_row_on_its_page(self, command: Command) -> None:
        """Each field of the command's settings has exactly one row in its page's table."""
        rows = [r.name for r in _rows(DOCS / command.page) if _command_of(r) is command]
        assert sorted(command.settings.model_fields) == sorted(rows)

    def test_every_row_names_a_real_setting(self) -> None:
        """Every settings row, in the README and in docs/, names a field, its env variable
        and its config table."""
        wrong = []
        for row in _all_rows():
            command = _command_of(row)
            if command is None or row.name not in command.settings.model_fields:
                wrong.append(f"{row.where}: no such setting ({row.env})")
            elif (row.env, row.section) != (command.prefix + row.name.upper(), command.section):
                wrong.append(f"{row.where}: {row.env} in [{row.section}]")
        assert wrong == []

    def test_every_row_shows_the_flag_the_command_takes(self) -> None:
        """The flag in each row is the setting's flag, and the command's --help lists it."""
        wrong = []
        for row in _all_rows():
            command = _command_of(row)
            if command is None or row.name not in command.settings.model_fields:
                continue  # reported by test_every_row_names_a_real_setting
            listed = re.search(rf"(?<![\w-]){re.escape(row.flag)}(?![\w-])", _help(command.page))
            if row.flag != command.flag(row.name) or listed is None:
                wrong.append(f"{row.where}: {row.flag}")
        assert wrong == []

    def test_every_row_shows_the_real_default(self) -> None:
        """A plain default (not computed at start-up) is written as the code has it."""
        wrong = []
        for row in _all_rows():
            command = _command_of(row)
            if command is None or row.name not in command.settings.model_fields:
                continue
            info = command.settings.model_fields[row.name]
            if info.default_factory is None and row.default != _shown(info.default):
                wrong.append(f"{row.where}: {row.default} != {_shown(info.default)}")
        assert wrong == []


def _missing(shown: Any, real: Any, path: str = "") -> list[str]:
    """The paths at which `shown` is not a part of `real`."""
    if isinstance(shown, dict) and isinstance(real, dict):
        out: list[str] = []
        for key, value in shown.items():
            where = f"{path}.{key}"
            out += _missing(value, real[key], where) if key in real else [where]
        return out
    if isinstance(shown, list) and isinstance(real, list) and len(shown) <= len(real):
        return [p for i, item in enumerate(shown) for p in _missing(item, real[i], f"{path}[{i}]")]
    return [] if shown == real else [path or "."]


class TestReadme:
    def test_fits_in_300_lines(self) -> None:
        """The README is a user's page: at most 300 lines."""
        assert len(_text(README).splitlines()) <= 300

    def test_opens_with_the_two_commands(self) -> None:
        """`make demo`, then `make test`, come before the glossary and the quick start."""
        text = _text(README)
        first = min(text.index("## Glossary"), text.index("## Quick start"))
        assert text.index("make demo") < text.index("make test") < first

    def test_stats_excerpt_is_part_of_the_real_answer(self) -> None:
        """Every key and value the README's `/stats` excerpt shows is in the real snapshot."""
        (excerpt,) = code_blocks(_text(README), "json")
        snapshot = json.loads(_text(SNAPSHOT))
        assert _missing(json.loads(excerpt), snapshot) == []

    def test_links_every_docs_page(self) -> None:
        """The README links each page of docs/ (and docs/README.md lists them all)."""
        linked = {(ROOT / target.split("#")[0]).resolve() for target in links(_text(README))}
        indexed = {(DOCS / t.split("#")[0]).resolve() for t in links(_text(DOCS / "README.md"))}
        assert set(PAGES) <= linked
        assert set(PAGES) - {DOCS / "README.md"} <= indexed


class TestLinks:
    @pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: p.name)
    def test_relative_links_resolve(self, page: Path) -> None:
        """Every relative link points at an existing file, and at an existing heading."""
        broken = []
        for target in links(_text(page)):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            known = resolved.exists() and (not anchor or anchor in _anchors_of(resolved))
            if not known:
                broken.append(target)
        assert broken == []


def _anchors_of(path: Path) -> set[str]:
    return anchors(_text(path)) if path.suffix == ".md" else set()


class TestReferencePages:
    def test_serve_routes_name_every_inference_path(self) -> None:
        """docs/serve.md's routes table lists every route that takes a lane."""
        routes = next(t for t in tables(_text(DOCS / "serve.md")) if t.header[0] == "Route")
        shown = {span.split()[-1] for span in ticks(routes.rows[0][0])}
        assert set(INFERENCE_PATHS) == shown

    def test_metrics_table_names_every_metric_with_its_type(self) -> None:
        """docs/stats.md's `/metrics` table lists what /metrics exposes, each with its type."""
        view = StatsView.model_validate(json.loads(_text(SNAPSHOT)))
        text = Metrics(lambda: view, client_labels=True).render().decode()
        exposed = {}
        for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE):
            total = kind == "counter" and not name.endswith("_total")
            exposed[name + "_total" if total else name] = kind
        table = next(t for t in tables(_text(DOCS / "stats.md")) if t.header[0] == "Metric")
        documented = {
            name: row[1] for row in table.rows for span in ticks(row[0]) for name in _expand(span)
        }
        assert exposed == documented


def _expand(name: str) -> list[str]:
    """`a_{b,c}_d` -> [`a_b_d`, `a_c_d`]."""
    match = re.search(r"\{([^}]*)\}", name)
    if match is None:
        return [name]
    head, tail = name[: match.start()], name[match.end() :]
    return [n for part in match.group(1).split(",") for n in _expand(head + part + tail)]
