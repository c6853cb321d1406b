"""Who listens on a TCP port: the listening sockets and the processes that own them."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.machine.machine import Machine
from proxy.machine.sockets import listening_sockets, parse_lsof, process_name, socket_owners

__all__ = ["Listener", "port_listeners"]


@dataclass(frozen=True)
class Listener:
    """One listening socket on a port, and who owns it."""

    address: str
    owner: str  # "pid 123 (ollama)", or "uid 997" when the process cannot be seen


def port_listeners(machine: Machine, port: int) -> tuple[tuple[Listener, ...], list[int]] | None:
    """Who listens on `port` (and their pids); None when this machine cannot tell."""
    if machine.platform == "darwin":
        shown = machine.run(["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fpcn"])
        if shown.rc == 127:
            return None
        rows = parse_lsof(shown.stdout)
        return tuple(Listener(addr, f"pid {pid} ({cmd})") for addr, pid, cmd in rows), [
            pid for _, pid, _ in rows
        ]
    sockets = listening_sockets(machine.proc_root, port)
    if sockets is None:
        return None
    owners = socket_owners(machine.proc_root, {item.inode for item in sockets})
    listeners, pids = [], []
    for item in sockets:
        pid = owners.get(item.inode)
        if pid is None:
            listeners.append(Listener(item.address, f"uid {item.uid}"))
        else:
            pids.append(pid)
            listeners.append(
                Listener(item.address, f"pid {pid} ({process_name(machine.proc_root, pid)})")
            )
    return tuple(listeners), pids
