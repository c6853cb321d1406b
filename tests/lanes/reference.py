"""Naive models of the queue rules, written from the rule text, to check the real queue against."""

from __future__ import annotations

from dataclasses import dataclass

from proxy.lanes.placement import Host
from proxy.lanes.ring import RANK, Ticket

__all__ = ["ReferenceQueue", "may_serve", "startable"]


@dataclass
class _Entry:
    id: int
    client: str
    priority: str
    rank: int
    entered: float
    seq: int = 0  # order of entry into its class


class ReferenceQueue:
    """Rules 3-5 on one host with `lanes` lanes, with lists and scans instead of a ring.

    3: the best class with tickets goes first. 4: its clients take turns in the order they
    joined; the client served moves to the tail if it has more, an absent client joins at the
    tail. 5: when admit(now) runs, a ticket that entered its class `aging_s` ago moves up, in
    the order tickets entered; it enters at its due time, or at the latest entry of the upper
    class if that is later, behind its client's tickets there.
    """

    def __init__(self, lanes: int, aging_s: float) -> None:
        self.free = lanes
        self.aging_s = aging_s
        self.queued: list[_Entry] = []
        self.rings: list[list[str]] = [[], [], []]
        self.next_id = 0
        self.next_seq = 0

    def submit(self, client: str, priority: str, now: float) -> int:
        self.next_id += 1
        self._join(_Entry(self.next_id, client, priority, RANK[priority], now), RANK[priority], now)
        return self.next_id

    def cancel(self, ticket_id: int) -> None:
        self._leave(next(e for e in self.queued if e.id == ticket_id))

    def finish(self) -> None:
        self.free += 1

    def admit(self, now: float) -> list[int]:
        if not self.free or not self.queued:
            return []
        self._age(now)
        admitted = []
        while self.free and self.queued:
            rank = next(r for r, ring in enumerate(self.rings) if ring)
            client = self.rings[rank][0]
            entry = min(self._in(rank, client), key=lambda e: e.seq)
            self._leave(entry)
            if client in self.rings[rank]:
                self.rings[rank].remove(client)
                self.rings[rank].append(client)
            self.free -= 1
            admitted.append(entry.id)
        return admitted

    def _in(self, rank: int, client: str | None = None) -> list[_Entry]:
        return [e for e in self.queued if e.rank == rank and client in (None, e.client)]

    def _join(self, entry: _Entry, rank: int, at: float) -> None:
        self.next_seq += 1
        entry.rank, entry.entered, entry.seq = rank, at, self.next_seq
        self.queued.append(entry)
        if entry.client not in self.rings[rank]:
            self.rings[rank].append(entry.client)

    def _leave(self, entry: _Entry) -> None:
        self.queued.remove(entry)
        if not self._in(entry.rank, entry.client):
            self.rings[entry.rank].remove(entry.client)

    def _age(self, now: float) -> None:
        for rank in (2, 1):
            while self._in(rank):
                entry = min(self._in(rank), key=lambda e: e.seq)
                due = entry.entered + self.aging_s
                if now < due:
                    break
                upper = [e.entered for e in self._in(rank - 1)]
                self._leave(entry)
                self._join(entry, rank - 1, max([due, *upper]))


def may_serve(host: Host, ticket: Ticket, hosts: tuple[Host, ...]) -> bool:
    """Rule 10: healthy, not avoided, and the model installed there or unknown there or held
    by no healthy host."""
    if not host.healthy or host.name in ticket.avoid:
        return False
    if host.installed is None or ticket.model in host.installed:
        return True
    return not any(
        h.healthy and h.installed is not None and ticket.model in h.installed for h in hosts
    )


def startable(host: Host, tickets: list[Ticket]) -> int:
    """How many of `tickets` `host` could start now, one by one, within rule 6: the model's
    lanes, and the cap or (auto) at most `max_loaded` models running."""
    running = dict(host.running)
    started = 0
    for ticket in tickets if host.healthy else []:
        model = ticket.model
        if running.get(model, 0) >= host.lanes_of(model).lanes:
            continue
        if host.cap is not None and sum(running.values()) >= host.cap:
            continue
        if host.cap is None and model not in running and len(running) >= host.max_loaded:
            continue
        running[model] = running.get(model, 0) + 1
        started += 1
    return started
