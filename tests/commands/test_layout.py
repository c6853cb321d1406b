"""proxy/commands/ holds one thin module per `lanes` subcommand, and nothing imports them."""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path

import pytest

from proxy.__main__ import COMMAND_MODULES, build_parser

REPO = Path(__file__).resolve().parents[2]
COMMANDS = REPO / "proxy" / "commands"


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, by its dotted name (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def is_commands(module: str) -> bool:
    """True for proxy.commands and its modules."""
    return module == "proxy.commands" or module.startswith("proxy.commands.")


class TestCommandModules:
    def test_one_module_per_subcommand(self) -> None:
        """Every module in proxy/commands/ is a subcommand `lanes` registers, and vice versa."""
        on_disk = {p.stem for p in COMMANDS.glob("*.py") if p.stem != "__init__"}
        assert on_disk == set(COMMAND_MODULES)

    @pytest.mark.parametrize("name", COMMAND_MODULES)
    def test_each_registers_only_its_own_subcommand(self, name: str) -> None:
        """`register` adds exactly one subcommand, named after its module."""
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(f"proxy.commands.{name}").register(sub)
        assert [name] == list(sub.choices)

    def test_the_lanes_parser_has_them_all(self) -> None:
        """`lanes` offers every subcommand, and each one runs a function."""
        parser = build_parser()
        for argv in (["install", "--dry-run"], ["uninstall"], ["doctor", "--json"], ["top"]):
            assert argv[0] == parser.parse_args(argv).command
            assert callable(parser.parse_args(argv).func)

    @pytest.mark.parametrize("name", COMMAND_MODULES)
    def test_commands_do_not_import_each_other(self, name: str) -> None:
        """A subcommand module imports no other subcommand module."""
        others = {f"proxy.commands.{other}" for other in COMMAND_MODULES if other != name}
        assert set() == imported_modules(COMMANDS / f"{name}.py") & others

    def test_nothing_imports_the_commands(self) -> None:
        """No module outside proxy/commands/ imports it (the entry point loads them by name)."""
        sources = [
            path
            for folder in ("proxy", "miner", "bench")
            for path in (REPO / folder).rglob("*.py")
            if COMMANDS not in path.parents
        ]
        importers = [
            str(path.relative_to(REPO))
            for path in sources
            if any(
                m == "proxy.commands" or m.startswith("proxy.commands.")
                for m in imported_modules(path)
            )
        ]
        assert importers == []
