"""FairQueue: pure, synchronous admission of tickets onto the lanes of upstreams.

Rules (everything that decides who gets a lane lives in this file):

1. No I/O, no asyncio, no clock. Every call that needs the time takes `now` (any monotonic
   seconds, read by the caller); the values are only subtracted and compared.
2. A ticket goes QUEUED -> ADMITTED -> FINISHED, or QUEUED -> CANCELLED (client left, wait
   limit, drain). Any other call raises `SchedulerError` and changes nothing: every check runs
   before the first mutation.
3. Lanes belong to an upstream. Each upstream has `lanes` lanes numbered 0..lanes-1 and never
   more than that many ADMITTED tickets; `admit()` fills free lanes, lowest number first. The
   proxy binds late instead: `proxy.binding.BindingQueue` reuses `_Pool`'s fair ring.
4. Choice: the lowest non-empty class wins (interactive < normal < batch). Inside a class the
   client keys with queued tickets form a ring. The client at the head gives its oldest ticket
   and moves to the tail if it has more; a client that was absent joins at the tail. So a
   newcomer waits at most one turn per other client in its class, however many tickets the
   others have queued.
5. Aging: a ticket that has spent `aging_s` in its class moves up one class and joins its
   client's turn there (at the tail of that client's own FIFO). A batch ticket is interactive
   after 2 * aging_s, so nothing starves.
6. `submit` raises `QueueFull` when no lane is free for the ticket's upstream and `max_queue`
   tickets already wait.

Cost: submit, cancel, finish and each admitted ticket are O(1) amortised (per-client deques,
an OrderedDict ring per class, removal by tombstone: a cancelled or promoted ticket stays in its
old deque and is skipped when reached). `snapshot()` is O(clients), not O(tickets).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

__all__ = [
    "CLASSES",
    "DEFAULT_UPSTREAM",
    "FairQueue",
    "HoldTime",
    "QueueFull",
    "QueueSnapshot",
    "SchedulerError",
    "Ticket",
    "TicketState",
]

CLASSES: tuple[str, ...] = ("interactive", "normal", "batch")
DEFAULT_UPSTREAM = "default"
_RANK = {name: rank for rank, name in enumerate(CLASSES)}


class SchedulerError(Exception):
    """An illegal call; the queue's state is unchanged."""


class QueueFull(Exception):
    """No lane is free and `max_queue` tickets already wait."""

    def __init__(self, depth: int, wait_estimate_s: float) -> None:
        super().__init__(f"queue full: {depth} requests waiting")
        self.depth = depth
        self.wait_estimate_s = wait_estimate_s


class TicketState(Enum):
    """Where a ticket is in its life (rule 2)."""

    QUEUED = "queued"
    ADMITTED = "admitted"
    FINISHED = "finished"
    CANCELLED = "cancelled"


@dataclass(eq=False, slots=True)
class Ticket:
    """One request waiting for, or holding, a lane."""

    id: int
    client: str
    priority: str
    upstream: str
    enqueued_at: float
    state: TicketState = TicketState.QUEUED
    lane: int | None = None
    admitted_at: float | None = None
    rank: int = field(default=0, repr=False)  # current class, after aging
    entered_at: float = field(default=0.0, repr=False)  # when it joined `rank`


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The queue's counters at one moment; times are the `now` values callers passed."""

    lanes: int
    busy: int
    depth: int
    by_class: dict[str, int]
    by_client: dict[str, int]
    oldest_enqueued_at: float | None
    by_upstream: dict[str, tuple[int, int, int]]  # name -> (lanes, busy, depth)


class HoldTime:
    """How long a lane is held, as a moving average; it prices a wait for `Retry-After`."""

    ALPHA = 0.2  # weight of the newest lane-hold time in the moving average
    DEFAULT_S = 1.0  # assumed lane-hold time until one has been measured

    __slots__ = ("mean_s",)

    def __init__(self) -> None:
        self.mean_s: float | None = None

    def add(self, admitted_at: float, now: float) -> None:
        """One lane was held from `admitted_at` until `now`."""
        held = max(0.0, now - admitted_at)
        mean = self.mean_s
        self.mean_s = held if mean is None else mean + self.ALPHA * (held - mean)

    def wait_s(self, ahead: int, lanes: int) -> float:
        """Seconds until one more ticket would start, with `ahead` queued before it."""
        hold = self.DEFAULT_S if self.mean_s is None else self.mean_s
        return (ahead + 1) / lanes * hold


class _Pool:
    """The lanes and the queued tickets of one upstream."""

    __slots__ = ("entered", "free", "hold", "lanes", "live", "queued", "rings", "running")

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes
        self.free = list(range(lanes))  # a heap of free lane numbers
        self.running: dict[int, Ticket] = {}
        self.queued: OrderedDict[int, Ticket] = OrderedDict()  # in submission order
        self.rings = tuple(OrderedDict[str, deque[Ticket]]() for _ in CLASSES)
        self.live = tuple(dict[str, int]() for _ in CLASSES)  # live tickets per client
        self.entered = tuple(OrderedDict[int, Ticket]() for _ in CLASSES)  # by entered_at
        self.hold = HoldTime()

    def join(self, ticket: Ticket, rank: int, at: float) -> None:
        ticket.rank, ticket.entered_at = rank, at
        self.entered[rank][ticket.id] = ticket
        ring = self.rings[rank]
        fifo = ring.get(ticket.client)
        if fifo is None:
            fifo = ring[ticket.client] = deque()
        fifo.append(ticket)
        live = self.live[rank]
        live[ticket.client] = live.get(ticket.client, 0) + 1

    def leave(self, ticket: Ticket) -> None:
        """Forget `ticket` in its class; its deque entry becomes a tombstone."""
        rank = ticket.rank
        del self.entered[rank][ticket.id]
        live = self.live[rank]
        left = live[ticket.client] - 1
        if left:
            live[ticket.client] = left
        else:
            del live[ticket.client]
            del self.rings[rank][ticket.client]

    def age(self, now: float, aging_s: float) -> None:
        for rank in range(len(CLASSES) - 1, 0, -1):
            entered, upper = self.entered[rank], self.entered[rank - 1]
            while entered:
                ticket = next(iter(entered.values()))
                due = ticket.entered_at + aging_s
                if now < due:
                    break
                self.leave(ticket)
                tail = next(reversed(upper.values())).entered_at if upper else due
                self.join(ticket, rank - 1, max(due, tail))

    def pop_next(self) -> Ticket:
        for rank, ring in enumerate(self.rings):
            if not ring:
                continue
            client, fifo = next(iter(ring.items()))
            ticket = fifo.popleft()
            while ticket.state is not TicketState.QUEUED or ticket.rank != rank:
                ticket = fifo.popleft()  # skip tombstones
            self.leave(ticket)
            if client in ring:
                ring.move_to_end(client)
            return ticket
        raise AssertionError("pop_next on an empty pool")  # pragma: no cover


class FairQueue:
    """Fair admission of tickets onto lanes; see the module docstring for the rules."""

    def __init__(
        self,
        capacity: Mapping[str, int] | int,
        *,
        max_queue: int,
        aging_s: float,
    ) -> None:
        lanes = {DEFAULT_UPSTREAM: capacity} if isinstance(capacity, int) else dict(capacity)
        if not lanes or any(n < 1 for n in lanes.values()):
            raise SchedulerError("every upstream needs at least one lane")
        if max_queue < 0 or aging_s <= 0:
            raise SchedulerError("max_queue must be >= 0 and aging_s > 0")
        self._pools = {name: _Pool(n) for name, n in lanes.items()}
        self._max_queue = max_queue
        self._aging_s = aging_s
        self._next_id = 0
        self._depth = 0
        self._by_class = dict.fromkeys(CLASSES, 0)
        self._by_client: dict[str, int] = {}

    @property
    def lanes(self) -> int:
        """Lanes over all upstreams."""
        return sum(pool.lanes for pool in self._pools.values())

    @property
    def busy(self) -> int:
        """Admitted tickets over all upstreams."""
        return sum(len(pool.running) for pool in self._pools.values())

    @property
    def depth(self) -> int:
        """Queued tickets over all upstreams."""
        return self._depth

    def submit(
        self, client: str, priority: str, now: float, *, upstream: str = DEFAULT_UPSTREAM
    ) -> Ticket:
        """Queue a ticket; `admit()` decides when it runs."""
        rank = _RANK.get(priority)
        if rank is None:
            raise SchedulerError(f"unknown priority {priority!r}; expected one of {CLASSES}")
        pool = self._pools.get(upstream)
        if pool is None:
            raise SchedulerError(f"unknown upstream {upstream!r}")
        if len(pool.free) <= len(pool.queued) and self._depth >= self._max_queue:
            raise QueueFull(self._depth, self.wait_estimate_s(upstream))
        self._next_id += 1
        ticket = Ticket(self._next_id, client, priority, upstream, now)
        pool.queued[ticket.id] = ticket
        pool.join(ticket, rank, now)
        self._count(ticket, 1)
        return ticket

    def admit(self, now: float) -> list[Ticket]:
        """Give free lanes to queued tickets (rules 3-5); returns the tickets admitted."""
        admitted: list[Ticket] = []
        for pool in self._pools.values():
            if not pool.free or not pool.queued:
                continue
            pool.age(now, self._aging_s)
            while pool.free and pool.queued:
                ticket = pool.pop_next()
                del pool.queued[ticket.id]
                self._count(ticket, -1)
                ticket.state = TicketState.ADMITTED
                ticket.lane = heapq.heappop(pool.free)
                ticket.admitted_at = now
                pool.running[ticket.id] = ticket
                admitted.append(ticket)
        return admitted

    def finish(self, ticket: Ticket, now: float) -> None:
        """Free the lane of an admitted ticket."""
        pool = self._pool_of(ticket)
        if pool.running.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not admitted")
        assert ticket.lane is not None
        assert ticket.admitted_at is not None
        del pool.running[ticket.id]
        heapq.heappush(pool.free, ticket.lane)
        ticket.state = TicketState.FINISHED
        pool.hold.add(ticket.admitted_at, now)

    def cancel(self, ticket: Ticket) -> None:
        """Remove a queued ticket; it will never be admitted."""
        pool = self._pool_of(ticket)
        if pool.queued.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not queued")
        del pool.queued[ticket.id]
        pool.leave(ticket)
        self._count(ticket, -1)
        ticket.state = TicketState.CANCELLED

    def drain(self) -> list[Ticket]:
        """Cancel every queued ticket (shutdown); returns them in submission order."""
        drained: list[Ticket] = []
        for pool in self._pools.values():
            drained.extend(pool.queued.values())
        for ticket in drained:
            self.cancel(ticket)
        return drained

    def wait_estimate_s(self, upstream: str = DEFAULT_UPSTREAM) -> float:
        """Seconds until one more ticket would start, from the measured lane-hold time."""
        pool = self._pools[upstream]
        return pool.hold.wait_s(len(pool.queued), pool.lanes)

    def snapshot(self) -> QueueSnapshot:
        """The counters now; `by_class` counts queued tickets by requested priority."""
        oldest = [
            next(iter(p.queued.values())).enqueued_at for p in self._pools.values() if p.queued
        ]
        return QueueSnapshot(
            lanes=self.lanes,
            busy=self.busy,
            depth=self._depth,
            by_class=dict(self._by_class),
            by_client=dict(self._by_client),
            oldest_enqueued_at=min(oldest) if oldest else None,
            by_upstream={
                name: (pool.lanes, len(pool.running), len(pool.queued))
                for name, pool in self._pools.items()
            },
        )

    def _pool_of(self, ticket: Ticket) -> _Pool:
        pool = self._pools.get(ticket.upstream)
        if pool is None:
            raise SchedulerError(f"ticket {ticket.id} belongs to no upstream of this queue")
        return pool

    def _count(self, ticket: Ticket, delta: int) -> None:
        self._depth += delta
        self._by_class[ticket.priority] += delta
        left = self._by_client.get(ticket.client, 0) + delta
        if left:
            self._by_client[ticket.client] = left
        else:
            del self._by_client[ticket.client]
