"""`lanes uninstall`: reverse everything `lanes install` did (or only print with --dry-run)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from proxy.install.executor import InstallError, closing_lines, execute, prepare_target
from proxy.install.platform_facts import installer_situation
from proxy.install.service_plan import plan_uninstall
from proxy.machine.machine import Machine
from proxy.status import ExitStatus

__all__ = ["register", "run_uninstall"]


def run_uninstall(args: argparse.Namespace, machine: Machine, out: TextIO = sys.stdout) -> int:
    """`lanes uninstall`: returns the exit status."""
    try:
        target = prepare_target(machine)
        plan = plan_uninstall(target, installer_situation(machine, target))
        if args.dry_run:
            print("# lanes uninstall --dry-run: nothing is changed. It would run:", file=out)
        pending = execute(plan, machine, target, args.dry_run, out)
    except (InstallError, OSError, ValueError) as exc:
        print(f"lanes uninstall: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    for line in closing_lines(plan, pending, args.dry_run):
        print(line, file=out)
    if not args.dry_run:
        print("Uninstalled: Ollama is back on its own settings and port 11434.", file=out)
    return ExitStatus.SUCCESS


def register(subparsers: Any) -> None:
    """Add `uninstall` to the `lanes` parser."""
    undo = subparsers.add_parser("uninstall", help="reverse everything `lanes install` did")
    undo.add_argument("--dry-run", action="store_true", help="print every file and command only")
    undo.set_defaults(func=lambda args: run_uninstall(args, Machine.current()))
