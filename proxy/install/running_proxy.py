"""The proxy running on this machine: the `lanes serve` process on an address, and its reload.

`lanes serve` reads its config file again on SIGHUP and applies `lanes`, `model_lanes` and
`num_parallel` at once (queued and running requests stay). `reload_proxy` sends that signal
to the process listening on the proxy's port, only when it is a `lanes serve` of this user.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from proxy.machine.listeners import port_listeners
from proxy.machine.machine import Machine

__all__ = ["Reload", "is_lanes_serve", "reload_proxy"]


@dataclass(frozen=True)
class Reload:
    """What `reload_proxy` did: the pids it signalled, or why it signalled none."""

    listening: bool  # something listens on the proxy's port (False: no proxy runs there)
    pids: tuple[int, ...] = ()
    why_not: str = ""


def is_lanes_serve(cmdline: Sequence[str]) -> bool:
    """True for the command line of `lanes serve` (the script) or `python -m proxy serve`."""
    words = list(cmdline)
    for i, word in enumerate(words):
        if word != "serve" or i == 0:
            continue
        if Path(words[i - 1]).name == "lanes" or words[max(0, i - 2) : i] == ["-m", "proxy"]:
            return True
    return False


def _ours(machine: Machine, pid: int) -> str | None:
    """None when `pid` is a `lanes serve` of this user; else what it is instead."""
    try:
        process = psutil.Process(pid)
        cmdline, uid = process.cmdline(), process.uids().real
    except (psutil.Error, OSError) as exc:
        return f"pid {pid} cannot be inspected ({type(exc).__name__})"
    if uid != machine.uid:
        return f"pid {pid} belongs to another user"
    if not is_lanes_serve(cmdline):
        return f"pid {pid} ({' '.join(cmdline[:3]) or '?'}) is not `lanes serve`"
    return None


def reload_proxy(machine: Machine, url: str) -> Reload:
    """Send SIGHUP to the `lanes serve` of this user that listens on `url`'s port."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = port_listeners(machine, port)
    if found is None:
        return Reload(True, why_not=f"this machine does not show who listens on port {port}")
    listeners, pids = found
    if not listeners:
        return Reload(False, why_not=f"nothing listens on port {port}")
    if not pids:
        return Reload(True, why_not=f"the process on port {port} belongs to another user")
    signalled, refused = [], []
    for pid in dict.fromkeys(pids):
        why = _ours(machine, pid)
        if why is None:
            try:
                os.kill(pid, signal.SIGHUP)
            except OSError as exc:
                why = f"pid {pid} could not be signalled ({exc.strerror or exc})"
            else:
                signalled.append(pid)
                continue
        refused.append(why)
    return Reload(True, tuple(signalled), "; ".join(refused))
