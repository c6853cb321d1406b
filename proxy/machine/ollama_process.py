"""The running Ollama as a process: its pids, when it started, and its NUM_PARALLEL.

`read_ollama_process` is what the daemon reads for a local upstream: the processes that
listen on the upstream's port, the first one's start time (a new pid or start time means
Ollama restarted), and OLLAMA_NUM_PARALLEL as that process has it:

- Linux: `/proc/<pid>/environ` of the listener, else ollama.service's `Environment=`
  (`systemctl show`), for an Ollama that runs as another user;
- macOS: `launchctl getenv` (what the app and brew services start with), else the listener's
  own environment, where the OS lets this user read it.

It blocks (external commands, a walk over /proc): call it in a thread. It never raises for
what a machine may refuse (a missing command, permissions, no /proc): those give a NUM_PARALLEL
of `unknown`, whose detail says why and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import psutil

from proxy.lanes.lanemap import Parallel, parse_num_parallel
from proxy.machine.environment import (
    launchctl_environment,
    proc_environment,
    process_environment,
    unit_environment,
)
from proxy.machine.listeners import port_listeners
from proxy.machine.machine import Machine
from proxy.machine.sockets import process_name
from proxy.ollama import default_num_parallel
from proxy.settings import is_loopback_host

__all__ = ["NUM_PARALLEL", "OllamaProcess", "parallel_from", "read_ollama_process"]

NUM_PARALLEL = "OLLAMA_NUM_PARALLEL"
SOURCE = "ollama-env"
REMOTE = "a remote host: set num_parallel in its [[serve.upstreams]] entry"
_FIX = "set num_parallel in this host's [[serve.upstreams]] entry"


@dataclass(frozen=True, slots=True)
class OllamaProcess:
    """The Ollama behind a local URL, as this machine lets the proxy see it."""

    pids: tuple[int, ...]  # processes listening on Ollama's port (empty: unknown)
    started_at: float | None  # the first listener's start time, Unix seconds; None: unknown
    num_parallel: Parallel  # its OLLAMA_NUM_PARALLEL: value, source, detail


def _port(url: str) -> int | None:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    return port or (443 if parts.scheme == "https" else 80)


def _started_at(pids: tuple[int, ...]) -> float | None:
    if not pids:
        return None
    try:
        return psutil.Process(pids[0]).create_time()
    except (psutil.Error, OSError):
        return None


def _not_a_value(raw: str | None) -> str | None:
    """None when `raw` is a number; else "unset" or why it is not one."""
    text = (raw or "").strip().strip("\"'")
    if not text:
        return "unset"
    try:
        int(text)
    except ValueError:
        return f"{raw!r} is not a number"
    return None


def parallel_from(raw: str | None, where: str, version: str | None) -> Parallel:
    """NUM_PARALLEL from its raw value as read `where`, as Ollama `version` takes it."""
    value = parse_num_parallel(raw, default_num_parallel(version))
    ollama = f"Ollama {version}" if version else "Ollama"
    said = _not_a_value(raw)
    if value is None:
        return Parallel.unknown(f"{said} in {where}, so {ollama} chooses it at each load: {_FIX}")
    if said is None:
        return Parallel(value, SOURCE, where)
    return Parallel(value, SOURCE, f"{said}: {ollama}'s default, in {where}")


def _linux(machine: Machine, pids: tuple[int, ...], version: str | None, why: str) -> Parallel:
    for pid in pids:
        env = proc_environment(machine, pid)
        if env is not None:
            name = process_name(machine.proc_root, pid)
            where = f"{machine.proc_root}/{pid}/environ of {name} (pid {pid})"
            return parallel_from(env.get(NUM_PARALLEL), where, version)
    unit = unit_environment(machine)
    if unit is not None:
        return parallel_from(unit.get(NUM_PARALLEL), "systemctl show ollama.service", version)
    return Parallel.unknown(
        f"{why} and there is no ollama.service: run the proxy as Ollama's user, or {_FIX}"
    )


def _process_name(pid: int) -> str:
    try:
        return psutil.Process(pid).name() or "?"
    except (psutil.Error, OSError):
        return "?"


def _darwin(machine: Machine, pids: tuple[int, ...], version: str | None, why: str) -> Parallel:
    launchd = launchctl_environment(machine, (NUM_PARALLEL,))
    if launchd is not None and NUM_PARALLEL in launchd:
        return parallel_from(launchd[NUM_PARALLEL], "launchctl getenv", version)
    for pid in pids:
        env = process_environment(pid)
        if env is not None:
            where = f"the environment of {_process_name(pid)} (pid {pid})"
            return parallel_from(env.get(NUM_PARALLEL), where, version)
    if launchd is not None:
        return parallel_from(None, "launchctl getenv", version)
    return Parallel.unknown(f"launchctl is not available and {why}: {_FIX}")


def _unreadable(port: int, found: tuple[object, list[int]] | None) -> str:
    """Why no listener's environment could be read, before trying."""
    if found is None:
        return f"this machine does not show who listens on port {port}"
    if not found[1]:
        return f"the process on port {port} belongs to another user"
    pids = ", ".join(str(pid) for pid in dict.fromkeys(found[1]))
    return f"the environment of pid {pids} is not readable"


def read_ollama_process(machine: Machine, url: str, version: str | None) -> OllamaProcess:
    """The Ollama at `url` (a loopback URL; other hosts are remote) and its NUM_PARALLEL.

    `version` is Ollama's (from /api/version): an unset NUM_PARALLEL is its default. Blocking
    (the daemon calls it in a thread).
    """
    host = urlsplit(url).hostname or ""
    if not is_loopback_host(host):
        return OllamaProcess((), None, Parallel.unknown(REMOTE))
    port = _port(url)
    if port is None:
        return OllamaProcess((), None, Parallel.unknown(f"{url} has no valid port: {_FIX}"))
    found = port_listeners(machine, port)
    if found is not None and not found[0]:
        return OllamaProcess(
            (), None, Parallel.unknown(f"nothing listens on port {port}: is Ollama running?")
        )
    pids = tuple(dict.fromkeys(found[1])) if found is not None else ()
    read = _darwin if machine.platform == "darwin" else _linux
    parallel = read(machine, pids, version, _unreadable(port, found))
    return OllamaProcess(pids, _started_at(pids), parallel)
