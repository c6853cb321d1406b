"""LaneGate: asyncio adapter over the LaneQueue; `async with gate.lane(...)` holds a lane."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from types import TracebackType

from proxy import errors
from proxy.lanes.queue import LaneQueue, Overflow, QueueSnapshot
from proxy.lanes.ring import Ticket, TicketState
from proxy.relay.classify import RequestFacts

__all__ = ["LaneGate", "Lease"]


def _retry_after(wait_s: float) -> int:
    """A `Retry-After` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))


class Lease:
    """One request's claim on a lane: waits in `__aenter__`, frees the lane in `__aexit__`.

    `move()` trades the lane for one on another host (a retry before the first byte); every
    lane it gets is reported through `on_admitted`. `on_queued` hears, once, that its first
    arrival has to wait (not a retry's).
    """

    __slots__ = (
        "_gate",
        "_on_admitted",
        "_on_queued",
        "avoid",
        "facts",
        "position",
        "queue_s",
        "ticket",
        "upstream",
    )

    def __init__(
        self,
        gate: LaneGate,
        facts: RequestFacts,
        on_admitted: Callable[[Lease], None] | None = None,
        on_queued: Callable[[Lease], None] | None = None,
    ) -> None:
        self._gate = gate
        self._on_admitted = on_admitted
        self._on_queued = on_queued
        self.facts = facts
        self.avoid: frozenset[str] = frozenset()
        self.upstream = ""  # the host the ticket was bound to; set once the lane is held
        self.ticket: Ticket | None = None
        self.queue_s = 0.0  # time spent waiting for lanes so far
        self.position = 0  # its place in the queue when it first arrived (0: it never waited)

    @property
    def lane(self) -> int:
        """The lane number (0-based) held; only valid inside the `async with`."""
        assert self.ticket is not None
        assert self.ticket.lane is not None
        return self.ticket.lane

    async def __aenter__(self) -> Lease:
        await self._take()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def move(self, *, avoid: str) -> None:
        """Give the lane back and wait for one on a host other than `avoid` (and earlier ones).
        The failed attempt did no work, so its charge is taken back."""
        self.charge(prompt_tokens=0, output_tokens=0)
        self.release()
        self.avoid = self.avoid | {avoid}
        await self._take()

    def charge(
        self,
        *,
        prompt_tokens: int | None = None,
        output_tokens: int | None = None,
        final: bool = False,
    ) -> None:
        """Charge the client for this request's work so far (queue rule 4); None keeps a count."""
        ticket = self.ticket
        if ticket is not None and ticket.state in (TicketState.ADMITTED, TicketState.FINISHED):
            self._gate.queue.charge(
                ticket, prompt_tokens=prompt_tokens, output_tokens=output_tokens, final=final
            )

    def progress(self) -> tuple[int, float]:
        """While waiting: its projected position (1-based) and estimated seconds to start."""
        ticket = self.ticket
        return (0, 0.0) if ticket is None else self._gate.progress(ticket)

    def release(self) -> None:
        """Free the lane now (idempotent; synchronous, so safe in a cancelled task's finally)."""
        if self.ticket is not None:
            self._gate._release(self.ticket)

    async def _take(self) -> None:
        started = self._gate.clock()
        try:
            ticket = self._gate._submit(self, self.avoid)
            if ticket.state is TicketState.QUEUED:
                await self._gate._wait(ticket, None if self.avoid else self)
        except BaseException:
            self.queue_s += self._gate.clock() - started
            raise
        assert ticket.admitted_at is not None
        self.queue_s += ticket.admitted_at - ticket.enqueued_at
        self.ticket, self.upstream = ticket, ticket.upstream
        if self._on_admitted is not None:
            self._on_admitted(self)


class LaneGate:
    """Owns the waiters' futures; every exit path gives the lane back.

    The scheduler decides; the gate only wakes the futures of the tickets it admits. A waiter
    that is cancelled (client gone, wait limit) withdraws its ticket, and if the scheduler had
    admitted it in the meantime, the lane is finished and handed on at once.
    """

    def __init__(
        self,
        queue: LaneQueue,
        *,
        max_wait_s: Mapping[str, float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._max_wait = dict(max_wait_s or {})
        self.clock = clock
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._closed = False
        self._peak = 0

    @property
    def queue(self) -> LaneQueue:
        """The scheduler this gate adapts."""
        return self._queue

    @property
    def lanes(self) -> int:
        """Lanes over all upstreams."""
        return self._queue.lanes

    @property
    def busy(self) -> int:
        """Lanes held right now."""
        return self._queue.busy

    @property
    def peak_busy(self) -> int:
        """The most lanes held at once since the gate was made."""
        return self._peak

    @property
    def depth(self) -> int:
        """Requests waiting for a lane right now."""
        return self._queue.depth

    @property
    def closed(self) -> bool:
        """True once `close()` ran: new inference requests are refused."""
        return self._closed

    def snapshot(self) -> QueueSnapshot:
        """The scheduler's counters (cheap; safe to call often)."""
        return self._queue.snapshot()

    def retry_after_s(self) -> int:
        """Seconds a rejected client should wait, from measured lane throughput."""
        return _retry_after(self._queue.wait_estimate_s())

    def lane(
        self,
        facts: RequestFacts,
        *,
        on_admitted: Callable[[Lease], None] | None = None,
        on_queued: Callable[[Lease], None] | None = None,
    ) -> Lease:
        """A lease to use as `async with gate.lane(facts) as lease:`.

        The facts' client, priority and model decide the turn and the host; `lease.upstream`
        names the host once the lane is held, and `on_admitted` hears of every lane taken.
        `on_queued` is called (in the waiting task) when the request's arrival has to wait.
        """
        return Lease(self, facts, on_admitted, on_queued)

    def poke(self) -> None:
        """Hand free lanes to waiters now (after a host's health or models changed)."""
        self._dispatch(self.clock())

    def close(self) -> int:
        """Refuse new requests and answer every queued one with `Draining`; returns how many."""
        self._closed = True
        drained = self._queue.drain()
        for ticket in drained:
            waiter = self._waiters.get(ticket.id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(self._draining())
        return len(drained)

    def _draining(self) -> errors.Draining:
        return errors.Draining("the proxy is shutting down", retry_after_s=self.retry_after_s())

    def progress(self, ticket: Ticket) -> tuple[int, float]:
        """A queued ticket's projected position (1-based; 0 once it runs) and ETA in seconds."""
        row = self._queue.place(ticket)
        return (0, 0.0) if row is None else (row.position, row.eta_s)

    def _submit(self, lease: Lease, avoid: frozenset[str]) -> Ticket:
        """Queue the lease's ticket and hand out free lanes; the ticket comes back admitted
        when it got one at once (the usual case), else queued for `_wait`."""
        if self._closed:
            raise self._draining()
        now = self.clock()
        facts = lease.facts
        try:
            ticket = self._queue.submit(
                facts.client,
                facts.priority,
                now,
                model=facts.model_key,
                avoid=avoid,
                prompt_tokens=facts.prompt_tokens,
                at_once=True,  # admitted at once when nothing waits; _dispatch does the rest
            )
        except Overflow as exc:
            raise errors.QueueFull(
                f"server busy, please try again.  {exc.depth} requests are queued for a lane",
                retry_after_s=_retry_after(exc.wait_estimate_s),
            ) from None
        self._dispatch(now)
        if ticket.state is TicketState.QUEUED:
            lease.ticket = ticket  # so progress() can find it while it waits
            if not avoid:  # a first arrival, not a retry
                lease.position = self._queue.position(ticket)
        return ticket

    async def _wait(self, ticket: Ticket, arrival: Lease | None = None) -> None:
        """Wait for `ticket`'s lane; an `arrival`'s `on_queued` hears of the wait first."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[ticket.id] = waiter
        limit = self._max_wait.get(ticket.priority)
        try:
            if arrival is not None and arrival._on_queued is not None:
                arrival._on_queued(arrival)
            if limit is None:
                await waiter
            else:
                async with asyncio.timeout(limit):
                    await waiter
        except TimeoutError:
            self._withdraw(ticket)
            raise errors.QueueTimeout(
                f"server busy, please try again.  no lane freed within {limit:g} s",
                retry_after_s=self.retry_after_s(),
            ) from None
        except BaseException:
            self._withdraw(ticket)
            raise
        finally:
            del self._waiters[ticket.id]

    def _withdraw(self, ticket: Ticket) -> None:
        if ticket.state is TicketState.QUEUED:
            self._queue.cancel(ticket)
        elif ticket.state is TicketState.ADMITTED:
            self._release(ticket)  # admitted while its waiter was being cancelled

    def _release(self, ticket: Ticket) -> None:
        if ticket.state is not TicketState.ADMITTED:
            return
        now = self.clock()
        self._queue.finish(ticket, now)
        self._dispatch(now)

    def _dispatch(self, now: float) -> None:
        for ticket in self._queue.admit(now):
            waiter = self._waiters.get(ticket.id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._peak = max(self._peak, self._queue.busy)
