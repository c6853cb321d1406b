"""BindingQueue: one fair queue for several hosts; a request is bound to a host when a lane frees.

Pure like `scheduler` (no I/O, no asyncio, no clock: `now` is passed in). Fairness is the same
ring as `FairQueue` (classes, client turns, aging); placement is `placement.choose`. On top:

1. Late binding. `admit()` takes the fair head and binds it to the host `choose()` picks. If no
   host can take the head now (its hosts are full, or its model's lane limit is reached), each
   host with a free lane takes the oldest request it can serve, warm models first, so lanes do
   not idle behind a blocked head. The head keeps its place.
2. Affinity. If binding the head would evict a loaded model while requests for a model loaded
   there wait, those go first, for at most `affinity_wait_s` from the first deferral on that host;
   then the swap happens. So a swap happens about once per batch, not once per request.
3. Per-model sub-queues (FIFO, tombstoned) make steps 1 and 2 cost O(models loaded on a host)
   or O(models queued x hosts), never a scan of the queue.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from proxy.lanes.placement import Host, choose
from proxy.lanes.ring import (
    _RANK,
    CLASSES,
    HoldTime,
    QueueFull,
    QueueSnapshot,
    SchedulerError,
    Ticket,
    TicketState,
    _Pool,  # the fair ring: classes, client turns, aging
)

__all__ = ["BindingQueue", "Bound"]


@dataclass(eq=False, slots=True)
class Bound(Ticket):
    """A ticket that names its model; `upstream` is empty until it is bound."""

    model: str = ""
    avoid: frozenset[str] = frozenset()


class BindingQueue:
    """Fair admission with late binding onto several hosts; see the module docstring."""

    def __init__(
        self, hosts: Sequence[Host], *, max_queue: int, aging_s: float, affinity_wait_s: float
    ) -> None:
        names = [h.name for h in hosts]
        if not hosts or len(set(names)) != len(names):
            raise SchedulerError("at least one host is needed, each with its own name")
        if max_queue < 0 or aging_s <= 0 or affinity_wait_s < 0:
            raise SchedulerError("max_queue and affinity_wait_s must be >= 0 and aging_s > 0")
        self.hosts = list(hosts)
        self._by_name = {h.name: h for h in hosts}
        self._ring = _Pool(1)  # only its queue side is used
        self._by_model: dict[str, deque[Bound]] = {}
        self._model_live: dict[str, int] = {}
        self._deferred: dict[str, float] = {}  # host -> when it first put off a swap
        self._running: dict[int, Bound] = {}
        self._max_queue = max_queue
        self._aging_s = aging_s
        self._affinity_s = affinity_wait_s
        self._next_id = 0
        self._turn = 0
        self._by_class = dict.fromkeys(CLASSES, 0)
        self._by_client: dict[str, int] = {}
        self._hold = HoldTime()

    @property
    def lanes(self) -> int:
        """Lanes over all hosts."""
        return sum(h.lanes for h in self.hosts)

    @property
    def busy(self) -> int:
        """Bound tickets over all hosts."""
        return len(self._running)

    @property
    def depth(self) -> int:
        """Queued tickets."""
        return len(self._ring.queued)

    def host(self, name: str) -> Host:
        """The host called `name` (KeyError if none)."""
        return self._by_name[name]

    def submit(
        self,
        client: str,
        priority: str,
        now: float,
        *,
        model: str = "",
        avoid: Iterable[str] = (),
    ) -> Bound:
        """Queue a ticket for `model`; `admit()` binds it to a host."""
        rank = _RANK.get(priority)
        if rank is None:
            raise SchedulerError(f"unknown priority {priority!r}; expected one of {CLASSES}")
        free = sum(len(h.free) for h in self.hosts if h.healthy)
        if free <= self.depth and self.depth >= self._max_queue:
            raise QueueFull(self.depth, self.wait_estimate_s())
        self._next_id += 1
        ticket = Bound(
            self._next_id, client, priority, "", now, model=model, avoid=frozenset(avoid)
        )
        self._ring.queued[ticket.id] = ticket
        self._ring.join(ticket, rank, now)
        self._by_model.setdefault(model, deque()).append(ticket)
        self._model_live[model] = self._model_live.get(model, 0) + 1
        self._count(ticket, 1)
        return ticket

    def admit(self, now: float) -> list[Ticket]:
        """Bind queued tickets to free lanes (module rules 1-2); returns the tickets bound."""
        admitted: list[Ticket] = []
        if not self._ring.queued or not any(h.healthy and h.free for h in self.hosts):
            return admitted
        self._ring.age(now, self._aging_s)
        while self._ring.queued and any(h.healthy and h.free for h in self.hosts):
            head = self._peek()
            host = choose(self.hosts, head.model, avoid=head.avoid, turn=self._turn)
            if host is not None:
                warm = self._affinity(host, head, now)
                admitted.append(self._bind(warm or head, host, now, turn=warm is None))
                continue
            placed = self._bypass(now)
            if placed is None:
                break
            admitted.append(placed)
        return admitted

    def finish(self, ticket: Ticket, now: float) -> None:
        """Free the lane of a bound ticket."""
        if self._running.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not admitted")
        assert isinstance(ticket, Bound)
        assert ticket.lane is not None
        assert ticket.admitted_at is not None
        del self._running[ticket.id]
        self._by_name[ticket.upstream].unbind(ticket.model, ticket.lane)
        ticket.state = TicketState.FINISHED
        self._hold.add(ticket.admitted_at, now)

    def cancel(self, ticket: Ticket) -> None:
        """Remove a queued ticket; it will never be bound."""
        if self._ring.queued.get(ticket.id) is not ticket:
            raise SchedulerError(f"ticket {ticket.id} is {ticket.state.value}, not queued")
        assert isinstance(ticket, Bound)
        self._unqueue(ticket)
        ticket.state = TicketState.CANCELLED

    def drain(self) -> list[Ticket]:
        """Cancel every queued ticket (shutdown); returns them in submission order."""
        drained: list[Ticket] = list(self._ring.queued.values())
        for ticket in drained:
            self.cancel(ticket)
        return drained

    def wait_estimate_s(self, upstream: str = "") -> float:
        """Seconds until one more ticket would start, from the measured lane-hold time."""
        lanes = sum(h.lanes for h in self.hosts if h.healthy) or self.lanes
        return self._hold.wait_s(self.depth, lanes)

    def set_health(self, name: str, healthy: bool) -> None:
        """Mark a host (un)healthy; an unhealthy host gets no new tickets."""
        self._by_name[name].healthy = healthy

    def snapshot(self) -> QueueSnapshot:
        """The counters now; per host `(lanes, busy, depth)`, depth 0 for unhealthy hosts."""
        queued = self._ring.queued
        return QueueSnapshot(
            lanes=self.lanes,
            busy=self.busy,
            depth=self.depth,
            by_class=dict(self._by_class),
            by_client=dict(self._by_client),
            oldest_enqueued_at=next(iter(queued.values())).enqueued_at if queued else None,
            by_upstream={
                h.name: (h.lanes, h.busy, self.depth if h.healthy else 0) for h in self.hosts
            },
        )

    def _peek(self) -> Bound:
        """The fair head, without taking it (tombstones on the way are dropped)."""
        for rank, ring in enumerate(self._ring.rings):
            if not ring:
                continue
            fifo = next(iter(ring.values()))
            while fifo[0].state is not TicketState.QUEUED or fifo[0].rank != rank:
                fifo.popleft()
            head = fifo[0]
            assert isinstance(head, Bound)
            return head
        raise AssertionError("peek on an empty queue")  # pragma: no cover

    def _oldest_for(self, host: Host, models: Iterable[str]) -> Bound | None:
        """The oldest queued ticket for one of `models` that `host` can take now."""
        best: Bound | None = None
        for model in models:
            fifo = self._by_model.get(model)
            if not fifo or not host.free_for(model):
                continue
            while fifo[0].state is not TicketState.QUEUED:
                fifo.popleft()
            ticket = fifo[0]
            if host.name not in ticket.avoid and (best is None or ticket.id < best.id):
                best = ticket
        return best

    def _affinity(self, host: Host, head: Bound, now: float) -> Bound | None:
        """A ticket for a model loaded on `host` to run instead of evicting it, or None."""
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

    def _bypass(self, now: float) -> Ticket | None:
        """The head is blocked: give one free lane to the oldest ticket it can serve."""
        for host in self.hosts:
            if not host.healthy or not host.free:
                continue
            ticket = self._oldest_for(host, list(host.loaded))
            if ticket is None:
                allowed = [m for m in self._by_model if self._may_serve(host, m)]
                ticket = self._oldest_for(host, allowed)
            if ticket is not None:
                return self._bind(ticket, host, now)
        return None

    def _may_serve(self, host: Host, model: str) -> bool:
        return host.has(model) or not any(
            h.healthy and h.installed is not None and model in h.installed for h in self.hosts
        )

    def _bind(self, ticket: Bound, host: Host, now: float, *, turn: bool = False) -> Bound:
        """Bind `ticket` to `host`; `turn`: it was the fair head, so its client's turn ends."""
        ring = self._ring.rings[ticket.rank]
        self._unqueue(ticket)
        if turn and ticket.client in ring:
            ring.move_to_end(ticket.client)
        ticket.upstream = host.name
        ticket.lane = host.bind(ticket.model)
        ticket.state = TicketState.ADMITTED
        ticket.admitted_at = now
        self._running[ticket.id] = ticket
        self._turn += 1
        return ticket

    def _unqueue(self, ticket: Bound) -> None:
        del self._ring.queued[ticket.id]
        self._ring.leave(ticket)
        left = self._model_live[ticket.model] - 1
        if left:
            self._model_live[ticket.model] = left
        else:
            del self._model_live[ticket.model]
            del self._by_model[ticket.model]
        self._count(ticket, -1)

    def _count(self, ticket: Ticket, delta: int) -> None:
        self._by_class[ticket.priority] += delta
        left = self._by_client.get(ticket.client, 0) + delta
        if left:
            self._by_client[ticket.client] = left
        else:
            del self._by_client[ticket.client]
