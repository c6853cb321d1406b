"""Detours: tickets handed a lane out of turn, by bypass (rule 10) and affinity (rule 11)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from proxy.lanes.backlog import Backlog
from proxy.lanes.placement import Host
from proxy.lanes.ring import Ticket

__all__ = ["Detours"]


class Detours:
    """Finds the ticket to run instead of the fair head, when the head cannot or should not go."""

    __slots__ = ("_affinity_s", "_backlog", "_deferred", "_hosts")

    def __init__(self, hosts: Sequence[Host], backlog: Backlog, affinity_wait_s: float) -> None:
        self._hosts = hosts
        self._backlog = backlog
        self._affinity_s = affinity_wait_s
        self._deferred: dict[str, float] = {}  # host -> when it first put off a swap

    def held(self) -> set[str]:
        """The queued models that some healthy host has installed."""
        installed = [h.installed for h in self._hosts if h.healthy and h.installed is not None]
        return {m for m in self._backlog.models() if any(m in names for names in installed)}

    def affinity(self, host: Host, head: Ticket, now: float) -> Ticket | None:
        """A ticket for a model loaded on `host` to run instead of evicting it (rule 11)."""
        if self._affinity_s <= 0 or not host.evicts(head.model):
            self._deferred.pop(host.name, None)  # the head fits: no swap is being put off
            return None
        warm = self._oldest_for(host, list(host.loaded))
        if warm is None:
            self._deferred.pop(host.name, None)
            return None
        since = self._deferred.setdefault(host.name, now)
        if now - since >= self._affinity_s:
            del self._deferred[host.name]
            return None
        return warm

    def bypass(self) -> tuple[Ticket, Host] | None:
        """The head is blocked: the oldest ticket a host with a free lane can serve (rule 10)."""
        held: set[str] | None = None
        for host in self._hosts:
            if not host.open():
                continue
            ticket = self._oldest_for(host, list(host.loaded))
            if ticket is None:
                held = self.held() if held is None else held
                models = [m for m in self._backlog.models() if host.has(m) or m not in held]
                ticket = self._oldest_for(host, models)
            if ticket is not None:
                return ticket, host
        return None

    def _oldest_for(self, host: Host, models: Iterable[str]) -> Ticket | None:
        """The oldest queued ticket for one of `models` that `host` can start now."""
        best: Ticket | None = None
        for model in models:
            if not host.free_for(model):
                continue
            ticket = self._backlog.oldest_for(model, host.name)
            if ticket is not None and (best is None or ticket.id < best.id):
                best = ticket
        return best
