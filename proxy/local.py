"""This machine as the daemon sees it: its name, its interfaces' addresses, its file limit."""

from __future__ import annotations

import resource
import socket
import sys

import psutil

__all__ = ["hostname", "local_addresses", "raise_open_file_limit"]

_DARWIN_OPEN_MAX = 10240  # macOS refuses a soft limit above OPEN_MAX, whatever the hard one


def hostname() -> str:
    """The machine's hostname, lower-case (Ollama accepts it as a Host)."""
    return socket.gethostname().lower()


def local_addresses() -> set[str]:
    """Every IP address of this machine's interfaces, without IPv6 zone suffixes."""
    return {
        addr.address.partition("%")[0].lower()
        for addrs in psutil.net_if_addrs().values()
        for addr in addrs
        if addr.family in (socket.AF_INET, socket.AF_INET6)
    }


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft open-file limit to the hard one; returns (before, after).

    launchd starts agents with a small soft limit (256 on macOS), and every waiting client
    holds a socket: without this a few hundred queued requests make every new one fail.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if sys.platform == "darwin" and (hard == resource.RLIM_INFINITY or hard > _DARWIN_OPEN_MAX):
        target = _DARWIN_OPEN_MAX
    if soft == resource.RLIM_INFINITY or (target != resource.RLIM_INFINITY and soft >= target):
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft, soft
    return soft, target
