"""`lanes stats` as a person reads it: `/stats` as tables (or JSON), printed to a console."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from proxy.stats.client import StatsUnavailable, fetch_stats
from proxy.status import ExitStatus

__all__ = ["print_stats", "render_tables", "render_verdict", "show_stats", "verdict_line"]

_BY_KEY = ("clients", "models")  # sections that map a name to a row of numbers
_FIRST = ("verdict", "secondary")  # shown above the tables, not in them


def verdict_line(stats: dict[str, Any]) -> str | None:
    """`kind: explanation Fix: fix`, one line; None when `stats` has no verdict."""
    v = stats.get("verdict")
    if not isinstance(v, dict):
        return None
    return f"{v.get('kind')}: {v.get('explanation')} Fix: {v.get('fix')}"


def render_verdict(stats: dict[str, Any]) -> Text:
    """The verdict as a person reads it first: the kind and why, the fix, the other kinds."""
    text = Text()
    v = stats.get("verdict")
    if not isinstance(v, dict):
        return text
    text.append(f"verdict  {v.get('kind')}", style="bold")
    text.append(f": {v.get('explanation')}\n")
    text.append(f"  fix: {v.get('fix')}", style="italic")
    also = [s.get("kind") for s in stats.get("secondary") or [] if isinstance(s, dict)]
    if also:
        text.append(f"\n  also: {', '.join(map(str, also))}")
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1e6 else f"{value:g}"
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]], depth: int = 0) -> None:
    """Rows `a.b.c -> value`; a small dict of plain values is one row, lists go to tables."""
    if isinstance(value, list):
        return
    nested = isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values())
    if isinstance(value, dict) and (nested or depth == 0):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out, depth + 1)
        return
    out.append((prefix, _cell(value)))


def _rows_table(title: str, rows: list[dict[str, Any]], first: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    columns = ([first] if first else []) + [k for k in (rows[0] if rows else {}) if k != first]
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*(_cell(row.get(name)) for name in columns))
    return table


def render_tables(stats: dict[str, Any]) -> RenderableType:
    """`/stats` as readable tables: the verdict first, then a table of fields, then one per
    list or per-key section."""
    fields = Table(box=box.SIMPLE_HEAD)
    fields.add_column("field")
    fields.add_column("value")
    for key, value in stats.items():
        if key in _BY_KEY or key in _FIRST or key == "warnings":
            continue
        pairs: list[tuple[str, str]] = []
        _flatten(key, value, pairs)
        for name, text in pairs:
            fields.add_row(name, text)
    parts: list[RenderableType] = (
        [render_verdict(stats), fields] if "verdict" in stats else [fields]
    )
    running = stats.get("lanes", {}).get("running", [])
    if running:
        parts.append(_rows_table("running", running))
    loaded = stats.get("upstream", {}).get("loaded_models", [])
    if loaded:
        parts.append(_rows_table("loaded models (/api/ps)", loaded))
    for key in _BY_KEY:
        named = [{key[:-1]: name, **row} for name, row in stats.get(key, {}).items()]
        if named:
            parts.append(_rows_table(key, named, first=key[:-1]))
    warnings = stats.get("warnings", [])
    parts.append(_rows_table("warnings", warnings) if warnings else Text("no warnings"))
    return Group(*parts)


async def show_stats(
    url: str, console: Console, *, token: str | None = None, as_json: bool = False
) -> ExitStatus:
    """Read `/stats` from the proxy at `url` and print it; for callers inside an event loop."""
    try:
        doc = await fetch_stats(url, token=token)
    except StatsUnavailable as exc:
        print(f"lanes: {exc}; is `lanes serve` running?", file=sys.stderr)
        return ExitStatus.UNAVAILABLE
    if as_json:
        console.print_json(json.dumps(doc))
    else:
        console.print(render_tables(doc))
    return ExitStatus.SUCCESS


def print_stats(
    url: str, console: Console, *, token: str | None = None, as_json: bool = False
) -> ExitStatus:
    """`show_stats` for synchronous callers (`lanes stats`, the end of `lanes demo`)."""
    return asyncio.run(show_stats(url, console, token=token, as_json=as_json))
