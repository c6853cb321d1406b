"""The installer's executor: prints each planned action, then performs it or leaves it for sudo."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TextIO

from proxy.install.config_edit import write_config
from proxy.install.lanes_exe import find_lanes_exe
from proxy.install.platform_facts import config_table
from proxy.install.service import (
    Action,
    MakeDir,
    RemoveFile,
    RunCommand,
    Target,
    WaitFor,
    WriteConfig,
    WriteFile,
    shell_line,
)
from proxy.install.service_plan import Plan
from proxy.machine.machine import Machine
from proxy.settings import ProxySettings

__all__ = ["InstallError", "closing_lines", "execute", "make_target", "prepare_target"]

POLL_S = 0.5  # how often a WaitFor action runs its command again


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


def prepare_target(machine: Machine) -> Target:
    """The target `lanes install` and `lanes uninstall` act on; InstallError if there is none."""
    if machine.platform not in ("darwin", "linux"):
        raise InstallError(f"lanes install supports macOS and Linux, not {machine.platform}")
    exe = find_lanes_exe(machine)
    if exe is None:
        raise InstallError("cannot find the installed `lanes` program; pip install ollama-lanes")
    return make_target(machine, exe)


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


def _write(action: WriteFile) -> None:
    if isinstance(action, WriteConfig):
        write_config(action.path, action.content.decode("utf-8"))
        return
    action.path.parent.mkdir(parents=True, exist_ok=True)
    partial = action.path.with_name(action.path.name + ".partial")
    partial.write_bytes(action.content)
    os.replace(partial, action.path)


def _wait(action: WaitFor, machine: Machine) -> None:
    deadline = time.monotonic() + action.timeout_s
    while machine.run(action.argv).rc != action.until_rc:
        if time.monotonic() >= deadline:
            raise InstallError(f"gave up after {action.timeout_s:g} s: {shell_line(action)}")
        time.sleep(POLL_S)


def _perform(action: Action, machine: Machine) -> None:
    if isinstance(action, WriteFile):
        _write(action)
    elif isinstance(action, RemoveFile):
        action.path.unlink(missing_ok=True)
    elif isinstance(action, MakeDir):
        action.path.mkdir(parents=True, exist_ok=True)
    elif isinstance(action, WaitFor):
        _wait(action, machine)
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


def closing_lines(plan: Plan, pending: list[Action], dry_run: bool) -> list[str]:
    """The plan's notes, then the privileged steps left for the user to run with sudo."""
    lines = [f"{'# ' if dry_run else ''}Note: {note}" for note in plan.notes]
    if pending:
        lines.append("Not finished: these steps need root. Run them, then `lanes doctor`:")
        lines += [shell_line(action, sudo=True) for action in pending]
    return lines
