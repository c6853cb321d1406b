"""LaneGate: asyncio adapter over FairQueue; `async with gate.lane(...)` holds a lane."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from proxy import errors
from proxy.binding import BindingQueue
from proxy.scheduler import (
    DEFAULT_UPSTREAM,
    FairQueue,
    QueueFull,
    QueueSnapshot,
    Ticket,
    TicketState,
)

__all__ = ["LaneGate", "Lease"]


def _retry_after(wait_s: float) -> int:
    """A `Retry-After` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))


class Lease:
    """One request's claim on a lane: waits in `__aenter__`, frees the lane in `__aexit__`."""

    __slots__ = ("_gate", "avoid", "client", "model", "priority", "queue_s", "ticket", "upstream")

    def __init__(
        self,
        gate: LaneGate,
        client: str,
        priority: str,
        upstream: str,
        model: str = "",
        avoid: frozenset[str] = frozenset(),
    ) -> None:
        self._gate = gate
        self.client = client
        self.priority = priority
        self.upstream = upstream  # with a BindingQueue: the host bound at admission
        self.model = model
        self.avoid = avoid
        self.ticket: Ticket | None = None
        self.queue_s = 0.0

    @property
    def lane(self) -> int:
        """The lane number (0-based) held; only valid inside the `async with`."""
        assert self.ticket is not None
        assert self.ticket.lane is not None
        return self.ticket.lane

    async def __aenter__(self) -> Lease:
        await self._gate._acquire(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Free the lane now (idempotent; synchronous, so safe in a cancelled task's finally)."""
        if self.ticket is not None:
            self._gate._release(self.ticket)


class LaneGate:
    """Owns the waiters' futures and the holders' tasks; every exit path gives the lane back.

    The scheduler decides; the gate only wakes the futures of the tickets it admits. A waiter
    that is cancelled (client gone, wait limit) withdraws its ticket, and if the scheduler had
    admitted it in the meantime, the lane is finished and handed on at once.
    """

    def __init__(
        self,
        queue: FairQueue | BindingQueue,
        *,
        max_wait_s: Mapping[str, float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._max_wait = dict(max_wait_s or {})
        self._clock = clock
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._holders: dict[int, asyncio.Task[Any]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._peak = 0

    @property
    def queue(self) -> FairQueue | BindingQueue:
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

    def retry_after_s(self, upstream: str = DEFAULT_UPSTREAM) -> int:
        """Seconds a rejected client should wait, from measured lane throughput."""
        return _retry_after(self._queue.wait_estimate_s(upstream))

    def lane(
        self,
        client: str,
        priority: str,
        *,
        upstream: str = DEFAULT_UPSTREAM,
        model: str = "",
        avoid: frozenset[str] = frozenset(),
    ) -> Lease:
        """A lease to use as `async with gate.lane(...) as lease:`.

        With a BindingQueue, `model` and `avoid` steer placement and `lease.upstream` names the
        host once the lease is held; with a FairQueue, `upstream` names the pool.
        """
        return Lease(self, client, priority, upstream, model, avoid)

    def poke(self) -> None:
        """Hand free lanes to waiters now (after a host's health or models changed)."""
        self._dispatch(self._clock())

    def close(self) -> int:
        """Refuse new requests and answer every queued one with `Draining`; returns how many."""
        self._closed = True
        drained = self._queue.drain()
        for ticket in drained:
            waiter = self._waiters.get(ticket.id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(self._draining())
        return len(drained)

    async def wait_idle(self) -> None:
        """Return once no lane is held."""
        while self._queue.busy:
            self._idle.clear()
            await self._idle.wait()

    def abort_running(self) -> int:
        """Cancel the tasks that hold lanes (end of a drain); returns how many."""
        holders = list(self._holders.values())
        for task in holders:
            task.cancel()
        return len(holders)

    def _draining(self) -> errors.Draining:
        return errors.Draining("the proxy is shutting down", retry_after_s=self.retry_after_s())

    async def _acquire(self, lease: Lease) -> None:
        if self._closed:
            raise self._draining()
        now = self._clock()
        queue = self._queue
        try:
            if isinstance(queue, BindingQueue):
                ticket: Ticket = queue.submit(
                    lease.client, lease.priority, now, model=lease.model, avoid=lease.avoid
                )
            else:
                ticket = queue.submit(lease.client, lease.priority, now, upstream=lease.upstream)
        except QueueFull as exc:
            raise errors.QueueFull(
                f"server busy, please try again.  {exc.depth} requests are queued for a lane",
                retry_after_s=_retry_after(exc.wait_estimate_s),
            ) from None
        lease.ticket = ticket
        self._dispatch(now)
        if ticket.state is TicketState.QUEUED:
            await self._wait(ticket)
        assert ticket.admitted_at is not None
        lease.upstream = ticket.upstream
        lease.queue_s = ticket.admitted_at - now
        task = asyncio.current_task()
        if task is not None:
            self._holders[ticket.id] = task

    async def _wait(self, ticket: Ticket) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[ticket.id] = waiter
        limit = self._max_wait.get(ticket.priority)
        try:
            if limit is None:
                await waiter
            else:
                async with asyncio.timeout(limit):
                    await waiter
        except TimeoutError:
            self._withdraw(ticket)
            raise errors.QueueTimeout(
                f"server busy, please try again.  no lane freed within {limit:g} s",
                retry_after_s=self.retry_after_s(ticket.upstream),
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
        self._holders.pop(ticket.id, None)
        if ticket.state is not TicketState.ADMITTED:
            return
        now = self._clock()
        self._queue.finish(ticket, now)
        self._dispatch(now)
        if not self._queue.busy:
            self._idle.set()

    def _dispatch(self, now: float) -> None:
        for ticket in self._queue.admit(now):
            waiter = self._waiters.get(ticket.id)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._peak = max(self._peak, self._queue.busy)
