"""The `lanes` command: one entry point with subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from proxy import __version__
from proxy.config import SettingsError
from proxy.status import ExitStatus

__all__ = ["main"]

# One module per subcommand in proxy/commands/, in `lanes --help` order; each exposes
# `register(subparsers)`, which adds its subcommand and sets `func(args) -> ExitStatus` on it.
COMMAND_MODULES: tuple[str, ...] = (
    "simulate",
    "serve",
    "stats",
    "top",
    "dashboard",
    "demo",
    "install",
    "uninstall",
    "doctor",
    "tune",
)


def build_parser() -> argparse.ArgumentParser:
    """The full `lanes` argument parser."""
    parser = argparse.ArgumentParser(
        prog="lanes",
        description="ollama-lanes: a fair-queue lane proxy in front of Ollama.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"proxy.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `lanes`; returns the exit status (130 on Ctrl-C, 2 on bad settings, 1 on an
    unexpected error, shown as one line unless `--debug` asks for the traceback)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except SettingsError as exc:
        print(f"lanes: {exc}", file=sys.stderr)
        return ExitStatus.CONFIG_ERROR
    except KeyboardInterrupt:
        return ExitStatus.CTRL_C
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"lanes: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return ExitStatus.ERROR
    return int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
