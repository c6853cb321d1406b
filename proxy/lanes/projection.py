"""The projected admission order of the queued tickets, for "when is it my turn?" (rule 17)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass

from proxy.lanes.ring import CLASSES, FairRing, HoldTime, Ticket
from proxy.lanes.service import ServiceCounters

__all__ = ["QueueSummary", "Waiting", "position", "project"]


@dataclass(frozen=True, slots=True)
class Waiting:
    """One queued ticket in the projected order; positions are 1-based."""

    ticket: Ticket
    klass: str  # the class it is in now (after aging)
    class_position: int
    position: int  # over all classes
    eta_s: float  # estimated seconds until it starts


@dataclass(frozen=True, slots=True)
class QueueSummary:
    """The first rows of the projected order, and what a view needs of the rest (rule 17)."""

    rows: list[Waiting]  # the first rows in projected order
    depth: int  # every queued ticket
    next_in_class: dict[str, str]  # class -> the client whose ticket starts first in it
    clients: dict[str, tuple[int, float]]  # client -> (queued tickets, oldest enqueued_at)


def _class_order(
    clients: list[tuple[str, list[Ticket]]],
    service: ServiceCounters,
    counters: dict[str, float],
) -> Iterator[Ticket]:
    """One class's tickets in the order its policy would admit them (rule 4); `counters` are
    the projected counters, charged here as tickets are projected to start."""
    if not service.by_tokens:
        fifos = [list(reversed(tickets)) for _, tickets in clients if tickets]
        while fifos:
            fifo = fifos.pop(0)
            yield fifo.pop()
            if fifo:
                fifos.append(fifo)
        return
    heap: list[tuple[float, int, str, list[Ticket]]] = []
    for seq, (client, tickets) in enumerate(clients):
        if tickets:
            heap.append((counters.get(client, 0.0), seq, client, list(reversed(tickets))))
    heapq.heapify(heap)
    seq = len(heap)
    while heap:
        counter, _, client, fifo = heapq.heappop(heap)
        ticket = fifo.pop()
        yield ticket
        counter += service.estimate(client, ticket.prompt_tokens)
        counters[client] = counter
        if fifo:
            seq += 1
            heapq.heappush(heap, (counter, seq, client, fifo))


def project(
    ring: FairRing,
    service: ServiceCounters,
    hold: HoldTime,
    lanes: int,
    *,
    upto: int | None = None,
    limit: int | None = None,
) -> list[Waiting]:
    """Every queued ticket in projected order; with `upto` (a ticket id), stop at that ticket;
    with `limit`, after that many rows.

    O(rows x log clients + clients); the live queue is never changed.
    """
    rows: list[Waiting] = []
    ahead = 0
    counters = service.counters()
    for rank, klass in enumerate(CLASSES):
        order = _class_order(ring.live(rank), service, counters)
        for place, ticket in enumerate(order, start=1):
            rows.append(Waiting(ticket, klass, place, ahead + 1, hold.wait_s(ahead, max(1, lanes))))
            ahead += 1
            if ticket.id == upto or len(rows) == limit:
                return rows
    return rows


def position(ring: FairRing, service: ServiceCounters, ticket: Ticket) -> int:
    """A queued ticket's place in `project()`'s order (1-based), without projecting the queue
    when it can be counted: its client's newest ticket (an arrival) in a class taken in turns
    (`requests`) or held by its client alone sits behind every better class's tickets, then
    round k of the turns (k: its place among its client's tickets): min(n, k) tickets of each
    client before it in ring order, min(n, k - 1) of each after. O(classes + clients);
    otherwise the projection up to it, O(tickets ahead).
    """
    place = ring.last_place(ticket)
    counts = ring.counts(ticket.rank)
    if place is None or (service.by_tokens and len(counts) > 1):
        return project(ring, service, HoldTime(), 1, upto=ticket.id)[-1].position
    ahead = sum(ring.sizes()[: ticket.rank])
    seen = False
    for client, live in counts:
        if client == ticket.client:
            seen = True
            ahead += place - 1
        else:
            ahead += min(live, place - 1 if seen else place)
    return ahead + 1
