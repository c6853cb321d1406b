"""proxy/commands/ holds one thin module per `lanes` subcommand, and nothing imports them."""

from __future__ import annotations

import argparse
import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.__main__ import COMMAND_MODULES, build_parser, subcommand

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


class TestOneSubcommandLoaded:
    def test_the_subcommand_is_the_first_word_that_is_not_an_option(self) -> None:
        """`lanes --debug serve --lanes 2` runs serve; an unknown word loads every subcommand."""
        assert subcommand(["--debug", "serve", "--lanes", "2"]) == "serve"
        assert None is subcommand(["--version"])
        assert None is subcommand(["serv"])

    def test_running_one_subcommand_registers_only_it(self) -> None:
        """`build_parser("serve")` knows serve alone, and parses its flags."""
        parser = build_parser("serve")
        assert parser.parse_args(["serve"]).command == "serve"
        with pytest.raises(SystemExit):
            parser.parse_args(["top"])

    def test_the_daemon_runs_without_rich(self) -> None:
        """`lanes serve` keeps rich out: its whole import graph loads, and structlog logs, with
        `import rich` refused (a fresh interpreter, as the entry point leaves it)."""
        code = (
            "import sys\n"
            "from proxy.__main__ import keep_daemon_light, build_parser\n"
            "keep_daemon_light()\n"
            "build_parser('serve')\n"
            "import proxy.relay.server, proxy.relay.app, proxy.dashboard.routes, structlog\n"
            "from proxy.log import configure_logging\n"
            "configure_logging('info', json=False)\n"
            "structlog.get_logger('t').info('started')\n"
            "try:\n    1 / 0\nexcept ZeroDivisionError:\n"
            "    structlog.get_logger('t').exception('failed')\n"
            "assert sys.modules['rich'] is None and 'pygments' not in sys.modules\n"
            "print('light')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stdout.strip()) == (0, "light"), done.stderr
