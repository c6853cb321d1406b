"""The tree shows the design: imports point one way, and nothing imports in a circle.

    commands/ -> relay/ | stats/ | install/ | simulator/ -> machine/ -> lanes/ -> (stdlib)
    relay/ -> dashboard/ -> stats/ | lanes/
    every package -> the flat shared basics in proxy/*.py -> (nothing of ours below them)

`machine/` (this machine: commands, processes, sockets, addresses) is the bottom sub-package:
it imports only the flat modules and the pure `lanes/` (for the records it returns).

Every import statement counts, including those inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("proxy", "miner", "bench")
# What `lanes/` may not use: I/O, asyncio, the clock (`now` is passed in), logging.
IMPURE = {"aiohttp", "asyncio", "time", "datetime", "socket", "logging", "structlog", "os"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if not any(part.startswith(".venv") for part in path.parts):
                found[_module(path)] = path
    return found


MODULES = _modules()


def _imports(name: str) -> Iterator[str]:
    """Every module `name` imports (`from a import b` yields `a.b` when that is a module)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            base = node.module
            if node.level:
                base = ".".join([*name.split(".")[: -node.level], node.module])
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _ours(name: str) -> set[str]:
    """The project modules `name` imports."""
    return {target for target in _imports(name) if target in MODULES and target != name}


def _in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _flat(name: str) -> bool:
    """A shared basic: `proxy` itself or one of the flat proxy/*.py modules."""
    return MODULES[name].parent == ROOT / "proxy"


def _violations(source: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{name} imports {target}"
        for name in MODULES
        if _in(name, source)
        for target in _ours(name)
        if any(_in(target, bad) for bad in forbidden)
    ]


class TestArrows:
    def test_lanes_import_nothing_of_the_other_packages(self) -> None:
        """lanes/ stays pure: it imports only itself from the project."""
        assert [
            f"{name} imports {target}"
            for name in MODULES
            if _in(name, "proxy.lanes")
            for target in _ours(name)
            if not _in(target, "proxy.lanes")
        ] == []

    def test_lanes_use_no_io_asyncio_or_clock(self) -> None:
        """lanes/ imports no aiohttp, asyncio, time or other I/O module."""
        assert [
            f"{name} imports {target}"
            for name in MODULES
            if _in(name, "proxy.lanes")
            for target in _imports(name)
            if target.split(".")[0] in IMPURE
        ] == []

    @pytest.mark.parametrize(
        ("source", "forbidden"),
        [
            ("proxy.relay", ("proxy.install", "proxy.commands")),
            (
                "proxy.stats",
                (
                    "proxy.relay",
                    "proxy.install",
                    "proxy.commands",
                    "proxy.machine",
                    "proxy.dashboard",
                ),
            ),
            (
                "proxy.dashboard",
                (
                    "proxy.relay",
                    "proxy.install",
                    "proxy.commands",
                    "proxy.machine",
                    "proxy.simulator",
                ),
            ),
            ("proxy.install", ("proxy.relay", "proxy.commands")),
            ("proxy.simulator", ("proxy.install", "proxy.commands")),
        ],
    )
    def test_packages_keep_their_direction(self, source: str, forbidden: tuple[str, ...]) -> None:
        """relay never imports install/commands; stats and install never import relay; the
        dashboard (which relay serves) imports only the read side below it."""
        assert _violations(source, forbidden) == []

    def test_machine_imports_no_package_above_it(self) -> None:
        """machine/ imports only the flat modules, itself and the pure lanes/ records."""
        assert [
            f"{name} imports {target}"
            for name in MODULES
            if _in(name, "proxy.machine")
            for target in _ours(name)
            if not (_flat(target) or _in(target, "proxy.machine") or _in(target, "proxy.lanes"))
        ] == []

    def test_nothing_imports_commands(self) -> None:
        """Subcommands are leaves: no module imports one (the entry point loads them by name)."""
        assert [
            f"{name} imports {target}"
            for name in MODULES
            for target in _ours(name)
            if _in(target, "proxy.commands") and target != "proxy.commands"
        ] == []

    def test_flat_modules_are_the_bottom(self) -> None:
        """proxy/*.py (shared basics) import no sub-package; only the entry point may."""
        subpackages = (
            "lanes",
            "relay",
            "stats",
            "install",
            "commands",
            "simulator",
            "machine",
            "dashboard",
        )
        flat = [n for n in MODULES if n.count(".") == 1 and n.startswith("proxy.")]
        assert [
            f"{name} imports {target}"
            for name in flat
            if name != "proxy.__main__"
            for target in _ours(name)
            if any(_in(target, f"proxy.{pkg}") for pkg in subpackages)
        ] == []

    def test_the_miner_uses_only_the_shared_config_loader(self) -> None:
        """The miner speaks HTTP to the proxy; of proxy/ it imports only proxy.config."""
        assert [
            f"{name} imports {target}"
            for name in MODULES
            if _in(name, "miner")
            for target in _ours(name)
            if _in(target, "proxy") and target not in ("proxy", "proxy.config")
        ] == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


class TestCircles:
    def test_no_module_imports_itself_through_others(self) -> None:
        """No import circles anywhere in proxy/, miner/ or bench/."""
        assert _cycles({name: _ours(name) for name in MODULES}) == []

    def test_the_check_finds_a_circle_when_there_is_one(self) -> None:
        """The detector itself works: a -> b -> c -> a is one circle, d -> a is none."""
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
        assert _cycles(graph) == [["a", "b", "c"]]
