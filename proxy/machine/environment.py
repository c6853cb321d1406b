"""Ollama's OLLAMA_* environment, read from its process, launchd or its systemd unit."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

import psutil

from proxy.machine.machine import Machine

__all__ = [
    "ENV_NAMES",
    "launchctl_environment",
    "ollama_environment",
    "proc_environment",
    "process_environment",
    "unit_environment",
]

ENV_NAMES = ("OLLAMA_NUM_PARALLEL", "OLLAMA_HOST", "OLLAMA_KV_CACHE_TYPE", "OLLAMA_KEEP_ALIVE")


def _ollama_only(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {key: value for key, value in pairs if key.startswith("OLLAMA_")}


def proc_environment(machine: Machine, pid: int) -> dict[str, str] | None:
    """The OLLAMA_* variables in /proc/<pid>/environ; None when it cannot be read."""
    try:
        raw = (machine.proc_root / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    items = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return _ollama_only((key, value) for key, _, value in items)


def process_environment(pid: int) -> dict[str, str] | None:
    """The OLLAMA_* variables of a running process, where the OS lets this user read them.

    On macOS that is through sysctl (a process of the same user), on Linux through /proc.
    None when the process is gone or its environment is refused.
    """
    try:
        env = psutil.Process(pid).environ()
    except (psutil.Error, OSError):
        return None
    return _ollama_only(env.items())


def launchctl_environment(
    machine: Machine, names: Iterable[str] = ENV_NAMES
) -> dict[str, str] | None:
    """launchd's user environment (`launchctl getenv`) for `names`; None without launchctl."""
    if machine.which("launchctl") is None:
        return None
    env: dict[str, str] = {}
    for name in names:
        value = machine.run(["launchctl", "getenv", name]).stdout.strip()
        if value:
            env[name] = value
    return env


def unit_environment(machine: Machine) -> dict[str, str] | None:
    """The OLLAMA_* variables of ollama.service's Environment=; None when it is not loaded."""
    shown = machine.run(
        ["systemctl", "show", "ollama.service", "--property=LoadState", "--property=Environment"]
    )
    if shown.rc != 0 or "LoadState=loaded" not in shown.stdout:
        return None
    match = re.search(r"^Environment=(.*)$", shown.stdout, re.MULTILINE)
    try:
        words = shlex.split(match[1]) if match else []
    except ValueError:  # an unbalanced quote: systemd's own quoting is not shell's
        words = match[1].split() if match else []
    return _ollama_only((key, value) for key, _, value in (w.partition("=") for w in words))


def ollama_environment(machine: Machine, pids: list[int]) -> tuple[dict[str, str] | None, str]:
    """Ollama's OLLAMA_* variables and where they were read; None when nothing could be read."""
    if machine.platform == "darwin":
        env = launchctl_environment(machine)
        if env is None:
            return None, "launchctl is not available"
        return env, "launchctl getenv; the app and brew services read it when they start"
    for pid in pids:
        found = proc_environment(machine, pid)
        if found is not None:
            return found, f"/proc/{pid}/environ of the process on Ollama's port"
    unit = unit_environment(machine)
    if unit is None:
        return None, "no readable Ollama process and no ollama.service"
    return unit, "systemctl show ollama.service"
