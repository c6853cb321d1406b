"""Listening TCP sockets on a port and their owners: Linux /proc/net/tcp{,6}, macOS `lsof -F`."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcSocket",
    "listening_sockets",
    "parse_lsof",
    "parse_proc_net",
    "process_name",
    "socket_owners",
]

_LISTEN = "0A"


@dataclass(frozen=True)
class ProcSocket:
    """One LISTEN row of /proc/net/tcp or tcp6."""

    address: str  # "127.0.0.1:11434", "[::1]:11434"
    port: int
    uid: int
    inode: int


def _decode(hex_addr: str) -> str:
    """/proc shows addresses as 32-bit words in host byte order."""
    words = [int(hex_addr[i : i + 8], 16) for i in range(0, len(hex_addr), 8)]
    packed = b"".join(struct.pack("=I", word) for word in words)
    if len(packed) == 4:
        return socket.inet_ntop(socket.AF_INET, packed)
    return "[" + socket.inet_ntop(socket.AF_INET6, packed) + "]"


def parse_proc_net(text: str) -> list[ProcSocket]:
    """The listening sockets in the text of /proc/net/tcp or /proc/net/tcp6."""
    found = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or cols[3] != _LISTEN:
            continue
        hex_addr, _, hex_port = cols[1].partition(":")
        port = int(hex_port, 16)
        found.append(ProcSocket(f"{_decode(hex_addr)}:{port}", port, int(cols[7]), int(cols[9])))
    return found


def listening_sockets(proc_root: Path, port: int) -> list[ProcSocket] | None:
    """Sockets listening on `port`, IPv4 and IPv6; None when /proc/net is not there."""
    found: list[ProcSocket] = []
    seen = False
    for name in ("tcp", "tcp6"):
        try:
            text = (proc_root / "net" / name).read_text()
        except OSError:
            continue
        seen = True
        found += [item for item in parse_proc_net(text) if item.port == port]
    return found if seen else None


def socket_owners(proc_root: Path, inodes: set[int]) -> dict[int, int]:
    """inode -> pid for the sockets whose owning process this user may inspect."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, int] = {}
    try:
        pids = [entry for entry in os.listdir(proc_root) if entry.isdigit()]
    except OSError:
        return owners
    for pid in pids:
        fd_dir = proc_root / pid / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target in wanted:
                owners[wanted[target]] = int(pid)
        if len(owners) == len(wanted):
            break
    return owners


def process_name(proc_root: Path, pid: int) -> str:
    """The short command name of a process, or "?"."""
    try:
        return (proc_root / str(pid) / "comm").read_text().strip() or "?"
    except OSError:
        return "?"


def parse_lsof(text: str) -> list[tuple[str, int, str]]:
    """(address, pid, command) from `lsof -nP -iTCP:PORT -sTCP:LISTEN -Fpcn` output."""
    found = []
    pid, command = 0, "?"
    for line in text.splitlines():
        tag, value = line[:1], line[1:]
        if tag == "p" and value.isdigit():
            pid, command = int(value), "?"
        elif tag == "c":
            command = value
        elif tag == "n":
            found.append((value, pid, command))
    return found
