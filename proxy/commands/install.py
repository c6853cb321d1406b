"""`lanes install` and `lanes uninstall`: plan, print, then act (or only print with --dry-run)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from proxy.install.checkup import wait_ready
from proxy.install.machine import Machine, find_lanes_exe
from proxy.install.platform_facts import config_table, installer_situation, proxy_token
from proxy.install.service import (
    Action,
    InstallOptions,
    MakeDir,
    RemoveFile,
    RunCommand,
    Target,
    WaitFor,
    WriteFile,
    addresses,
    shell_line,
)
from proxy.install.service_plan import Plan, plan_install, plan_uninstall
from proxy.settings import ProxySettings
from proxy.status import ExitStatus

__all__ = ["keep_alive_duration", "make_target", "register", "run_install", "run_uninstall"]

DEFAULT_LANES = 2
_GO_DURATION = re.compile(r"[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+")


def keep_alive_duration(value: str) -> str:
    """An Ollama keep-alive: a Go duration ("10m", "1h30m", "-1m") or whole seconds ("300")."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text) or _GO_DURATION.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(f"{value!r} is not a duration such as 5m, 1h, -1 or 300")


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 256:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number from 1 to 256")
    return number


def _positive_queue(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above 0")
    return int(value)


class InstallError(Exception):
    """An action failed; the message says which and why."""


def make_target(machine: Machine, lanes_exe: Path) -> Target:
    """The install target for this machine; the drain timeout comes from the config file."""
    drain = config_table(machine.config_path).get("drain_timeout_s")
    default = ProxySettings.model_fields["drain_timeout_s"].default
    return Target(
        platform=machine.platform,
        home=machine.home,
        uid=machine.uid,
        lanes_exe=lanes_exe,
        config_path=machine.config_path,
        etc_root=machine.etc_root,
        drain_timeout_s=float(drain) if isinstance(drain, int | float) else float(default),
    )


def _summary(action: Action) -> str:
    if isinstance(action, WriteFile):
        return f"wrote {action.path}"
    if isinstance(action, RemoveFile):
        return f"removed {action.path}"
    if isinstance(action, MakeDir):
        return f"created {action.path}"
    if isinstance(action, WaitFor):
        return "waited: " + shell_line(action)
    return "ran " + shell_line(action)


def _perform(action: Action, machine: Machine) -> None:
    if isinstance(action, WriteFile):
        action.path.parent.mkdir(parents=True, exist_ok=True)
        partial = action.path.with_name(action.path.name + ".partial")
        partial.write_bytes(action.content)
        os.replace(partial, action.path)
    elif isinstance(action, RemoveFile):
        action.path.unlink(missing_ok=True)
    elif isinstance(action, MakeDir):
        action.path.mkdir(parents=True, exist_ok=True)
    elif isinstance(action, WaitFor):
        deadline = time.monotonic() + action.timeout_s
        while machine.run(action.argv).rc != action.until_rc:
            if time.monotonic() >= deadline:
                raise InstallError(f"gave up after {action.timeout_s:g} s: {shell_line(action)}")
            time.sleep(0.5)
    elif isinstance(action, RunCommand):
        done = machine.run(action.argv)
        if done.rc != 0 and not action.may_fail:
            detail = (done.stderr or done.stdout).strip().splitlines()
            why = f": {detail[-1]}" if detail else ""
            raise InstallError(f"`{shell_line(action)}` failed with status {done.rc}{why}")


def _privileged_ok(machine: Machine, target: Target) -> bool:
    """Root may write the system drop-in; anyone else gets the sudo commands to run."""
    if not machine.is_root:
        return False
    folder = target.dropin_path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def execute(
    plan: Plan, machine: Machine, target: Target, dry_run: bool, out: TextIO
) -> list[Action]:
    """Print and perform each action; returns the privileged ones left for the user to run."""
    privileged_ok = _privileged_ok(machine, target)
    pending: list[Action] = []
    for action in plan.actions:
        sudo = action.privileged and not privileged_ok
        if dry_run:
            print(shell_line(action, sudo=sudo), file=out)
        elif sudo:
            pending.append(action)
        else:
            _perform(action, machine)
            print(f"  {_summary(action)}", file=out)
    return pending


def _prepare(machine: Machine) -> Target:
    if machine.platform not in ("darwin", "linux"):
        raise InstallError(f"lanes install supports macOS and Linux, not {machine.platform}")
    exe = find_lanes_exe(machine)
    if exe is None:
        raise InstallError("cannot find the installed `lanes` program; pip install ollama-lanes")
    return make_target(machine, exe)


def _finish(plan: Plan, pending: list[Action], out: TextIO, dry_run: bool) -> None:
    for note in plan.notes:
        print(f"{'# ' if dry_run else ''}Note: {note}", file=out)
    if pending:
        print("Not finished: these steps need root. Run them, then `lanes doctor`:", file=out)
        for action in pending:
            print(shell_line(action, sudo=True), file=out)


def run_install(args: argparse.Namespace, machine: Machine, out: TextIO = sys.stdout) -> int:
    """`lanes install`: returns the exit status."""
    try:
        target = _prepare(machine)
        situation = installer_situation(machine, target)
        previous = config_table(machine.config_path).get("lanes")
        lanes = args.lanes or (previous if isinstance(previous, int) else DEFAULT_LANES)
        options = InstallOptions(lanes, args.takeover, args.keep_alive, args.max_queue)
        plan = plan_install(target, options, situation)
        if args.dry_run:
            print("# lanes install --dry-run: nothing is changed. It would run:", file=out)
        pending = execute(plan, machine, target, args.dry_run, out)
    except (InstallError, OSError, ValueError) as exc:
        print(f"lanes install: {exc}", file=sys.stderr)
        print("`lanes uninstall` undoes any steps already taken.", file=sys.stderr)
        return ExitStatus.ERROR
    _finish(plan, pending, out, args.dry_run)
    if args.dry_run:
        return ExitStatus.SUCCESS
    listen, ollama = addresses(options.takeover)
    if pending:
        print(f"The proxy is installed at http://{listen}; finish with the steps above.", file=out)
        return ExitStatus.SUCCESS
    if not args.no_wait:
        problems = asyncio.run(
            wait_ready(
                f"http://{ollama}",
                f"http://{listen}",
                lanes,
                args.wait_timeout,
                proxy_token(machine),
            )
        )
        if problems:
            print("lanes install: after waiting, " + "; ".join(problems), file=sys.stderr)
            print("Run `lanes doctor` to see why.", file=sys.stderr)
            return ExitStatus.UNAVAILABLE
        print(f"Ollama answers at http://{ollama}; the proxy serves {lanes} lanes.", file=out)
    print(f"Installed: point clients at http://{listen}. To undo: lanes uninstall", file=out)
    return ExitStatus.SUCCESS


def run_uninstall(args: argparse.Namespace, machine: Machine, out: TextIO = sys.stdout) -> int:
    """`lanes uninstall`: returns the exit status."""
    try:
        target = _prepare(machine)
        plan = plan_uninstall(target, installer_situation(machine, target))
        if args.dry_run:
            print("# lanes uninstall --dry-run: nothing is changed. It would run:", file=out)
        pending = execute(plan, machine, target, args.dry_run, out)
    except (InstallError, OSError, ValueError) as exc:
        print(f"lanes uninstall: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    _finish(plan, pending, out, args.dry_run)
    if not args.dry_run:
        print("Uninstalled: Ollama is back on its own settings and port 11434.", file=out)
    return ExitStatus.SUCCESS


def register(subparsers: Any) -> None:
    """Add `install` and `uninstall` to the `lanes` parser."""
    cmd = subparsers.add_parser("install", help="run the proxy as a service and set up Ollama")
    cmd.add_argument(
        "--lanes", type=_positive, metavar="N", help="OLLAMA_NUM_PARALLEL and the proxy's lanes"
    )
    cmd.add_argument(
        "--takeover",
        action="store_true",
        help="serve the proxy on 127.0.0.1:11434 and move Ollama to 127.0.0.1:11436",
    )
    cmd.add_argument(
        "--keep-alive", type=keep_alive_duration, metavar="D", help="set OLLAMA_KEEP_ALIVE (5m, 1h)"
    )
    cmd.add_argument("--max-queue", type=_positive_queue, metavar="N", help="set OLLAMA_MAX_QUEUE")
    cmd.add_argument("--dry-run", action="store_true", help="print every file and command only")
    cmd.add_argument("--no-wait", action="store_true", help="do not wait for Ollama and proxy")
    cmd.add_argument(
        "--wait-timeout", type=float, default=60.0, metavar="S", help="seconds (default 60)"
    )
    cmd.set_defaults(func=lambda args: run_install(args, Machine.current()))
    undo = subparsers.add_parser("uninstall", help="reverse everything `lanes install` did")
    undo.add_argument("--dry-run", action="store_true", help="print every file and command only")
    undo.set_defaults(func=lambda args: run_uninstall(args, Machine.current()))
