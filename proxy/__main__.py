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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full `lanes` argument parser; with `only` (a subcommand), just that one registered,
    so running one subcommand loads no other's modules."""
    parser = argparse.ArgumentParser(
        prog="lanes",
        description="ollama-lanes: a fair-queue lane proxy in front of Ollama.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES if only is None else (only,):
        module = importlib.import_module(f"proxy.commands.{name}")
        module.register(sub)
    return parser


def subcommand(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names (its first word that is not an option), if it is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMAND_MODULES else None


def keep_daemon_light() -> None:
    """`lanes serve` draws nothing in a terminal: keep rich (and the pygments it brings) out
    of the daemon, where structlog would import it just because it is installed (about 4 MB
    of idle RSS; structlog's console renderer then prints plain tracebacks)."""
    if "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError


def main(argv: Sequence[str] | None = None) -> int:
    """Run `lanes`; returns the exit status (130 on Ctrl-C, 2 on bad settings, 1 on an
    unexpected error, shown as one line unless `--debug` asks for the traceback)."""
    args_in = sys.argv[1:] if argv is None else list(argv)
    command = subcommand(args_in)
    if command == "serve":
        keep_daemon_light()
    parser = build_parser(command)
    args = parser.parse_args(args_in)
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
