"""This machine's names for itself: its hostname and its interfaces' addresses."""

from __future__ import annotations

import socket

import psutil

__all__ = ["hostname", "local_addresses"]


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
