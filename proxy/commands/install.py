"""`lanes install`: plan, print, then act (or only print with --dry-run)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from proxy.install.checkup import wait_ready
from proxy.install.executor import InstallError, closing_lines, execute, prepare_target
from proxy.install.options import keep_alive_duration, lane_count, queue_bound
from proxy.install.platform_facts import (
    installed_num_parallel,
    installer_situation,
    proxy_token,
)
from proxy.install.service import InstallOptions, addresses
from proxy.install.service_plan import plan_install
from proxy.machine.machine import Machine
from proxy.status import ExitStatus

__all__ = ["register", "run_install"]

DEFAULT_LANES = 2
T = TypeVar("T")


def _flag_type(check: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse `type` that reports `check`'s ValueError as the flag's error message."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def run_install(args: argparse.Namespace, machine: Machine, out: TextIO = sys.stdout) -> int:
    """`lanes install`: returns the exit status."""
    try:
        target = prepare_target(machine)
        situation = installer_situation(machine, target)
        lanes = args.lanes or installed_num_parallel(machine, target) or DEFAULT_LANES
        options = InstallOptions(lanes, args.takeover, args.keep_alive, args.max_queue)
        plan = plan_install(target, options, situation)
        if args.dry_run:
            print("# lanes install --dry-run: nothing is changed. It would run:", file=out)
        pending = execute(plan, machine, target, args.dry_run, out)
    except (InstallError, OSError, ValueError) as exc:
        print(f"lanes install: {exc}", file=sys.stderr)
        print("`lanes uninstall` undoes any steps already taken.", file=sys.stderr)
        return ExitStatus.ERROR
    for line in closing_lines(plan, pending, args.dry_run):
        print(line, file=out)
    if args.dry_run:
        return ExitStatus.SUCCESS
    listen, ollama = addresses(options.takeover)
    if pending:
        print(f"The proxy is installed at http://{listen}; finish with the steps above.", file=out)
        return ExitStatus.SUCCESS
    if not args.no_wait:
        token = proxy_token(machine)
        ready = wait_ready(f"http://{ollama}", f"http://{listen}", lanes, args.wait_timeout, token)
        problems = asyncio.run(ready)
        if problems:
            print("lanes install: after waiting, " + "; ".join(problems), file=sys.stderr)
            print("Run `lanes doctor` to see why.", file=sys.stderr)
            return ExitStatus.UNAVAILABLE
        print(
            f"Ollama answers at http://{ollama} with OLLAMA_NUM_PARALLEL={lanes}; the proxy "
            "follows it (each model's lanes: `lanes doctor`).",
            file=out,
        )
    print(f"Installed: point clients at http://{listen}. To undo: lanes uninstall", file=out)
    return ExitStatus.SUCCESS


def register(subparsers: Any) -> None:
    """Add `install` to the `lanes` parser."""
    cmd = subparsers.add_parser("install", help="run the proxy as a service and set up Ollama")
    cmd.add_argument(
        "--lanes",
        type=_flag_type(lane_count),
        metavar="N",
        help="OLLAMA_NUM_PARALLEL: requests Ollama runs at once per model; the proxy follows it "
        "(default: the value installed before, else 2)",
    )
    cmd.add_argument(
        "--takeover",
        action="store_true",
        help="serve the proxy on 127.0.0.1:11434 and move Ollama to 127.0.0.1:11436",
    )
    cmd.add_argument(
        "--keep-alive",
        type=_flag_type(keep_alive_duration),
        metavar="D",
        help="set OLLAMA_KEEP_ALIVE (5m, 1h)",
    )
    cmd.add_argument(
        "--max-queue", type=_flag_type(queue_bound), metavar="N", help="set OLLAMA_MAX_QUEUE"
    )
    cmd.add_argument("--dry-run", action="store_true", help="print every file and command only")
    cmd.add_argument("--no-wait", action="store_true", help="do not wait for Ollama and proxy")
    cmd.add_argument(
        "--wait-timeout", type=float, default=60.0, metavar="S", help="seconds (default 60)"
    )
    cmd.set_defaults(func=lambda args: run_install(args, Machine.current()))
