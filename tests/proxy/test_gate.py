"""LaneGate: waiting, cancellation, wait limits and drain, on a real event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from proxy import errors
from proxy.gate import LaneGate
from proxy.scheduler import FairQueue
from tests.waiting import PATIENCE_S, wait_for


def make(lanes: int = 1, *, max_queue: int = 100, **max_wait: float | None) -> LaneGate:
    return LaneGate(FairQueue(lanes, max_queue=max_queue, aging_s=30.0), max_wait_s=max_wait)


async def hold(gate: LaneGate, client: str, release: asyncio.Event, log: list[str]) -> None:
    async with gate.lane(client, "normal"):
        log.append(client)
        await release.wait()


async def until(check: Callable[[], bool], what: str) -> None:
    """Let the other tasks run until the gate's state shows `check`."""
    await wait_for(check, timeout=PATIENCE_S, what=what, interval=0.001)


class TestLaneGate:
    async def test_free_lane_is_taken_at_once(self) -> None:
        """With a lane free the lease is granted without waiting and names its lane."""
        gate = make(2)
        async with gate.lane("a", "normal") as lease:
            assert (lease.lane, gate.busy) == (0, 1)
            assert lease.queue_s == 0.0
        assert gate.busy == 0

    async def test_peak_busy_counts_the_most_lanes_held_at_once(self) -> None:
        """peak_busy is the gate's own high-water mark of lanes held, not a sample."""
        gate = make(3)
        assert gate.peak_busy == 0
        async with gate.lane("a", "normal"), gate.lane("b", "normal"):
            assert (gate.busy, gate.peak_busy) == (2, 2)
        async with gate.lane("c", "normal"):
            assert (gate.busy, gate.peak_busy) == (1, 2)

    async def test_waiter_starts_when_the_holder_leaves(self) -> None:
        """A queued lease is admitted as soon as the lane is given back."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        first = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: log == ["a"], "a to hold the lane")
        second = asyncio.create_task(hold(gate, "b", asyncio.Event(), log))
        await until(lambda: gate.depth == 1, "b to queue")
        assert (log, gate.busy) == (["a"], 1)
        release.set()
        await first
        await until(lambda: log == ["a", "b"], "b to hold the lane")
        assert (gate.busy, gate.depth) == (1, 0)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert gate.busy == 0

    async def test_cancelled_waiter_leaves_the_queue(self) -> None:
        """A waiter whose task is cancelled is removed and never admitted."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: log == ["a"], "a to hold the lane")
        waiter = asyncio.create_task(hold(gate, "b", asyncio.Event(), log))
        await until(lambda: gate.depth == 1, "b to queue")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert gate.depth == 0
        release.set()
        await holder
        assert (log, gate.busy) == (["a"], 0)

    async def test_cancelled_holder_frees_its_lane(self) -> None:
        """Cancelling the task inside `async with` gives the lane to the next waiter."""
        gate = make(1)
        log: list[str] = []
        holder = asyncio.create_task(hold(gate, "a", asyncio.Event(), log))
        await until(lambda: log == ["a"], "a to hold the lane")
        nxt = asyncio.create_task(hold(gate, "b", asyncio.Event(), log))
        await until(lambda: gate.depth == 1, "b to queue")
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        await until(lambda: log == ["a", "b"], "b to hold the lane")
        assert gate.busy == 1
        assert gate.abort_running() == 1
        with pytest.raises(asyncio.CancelledError):
            await nxt
        assert gate.busy == 0

    async def test_wait_limit_answers_queue_timeout(self) -> None:
        """A lease that waits longer than its class's limit raises QueueTimeout with Retry-After."""
        gate = make(1, batch=0.05)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: log == ["a"], "a to hold the lane")
        with pytest.raises(errors.QueueTimeout) as caught:
            async with gate.lane("b", "batch"):
                pytest.fail("admitted past the wait limit")
        assert caught.value.retry_after_s is not None
        assert caught.value.retry_after_s >= 1
        assert gate.depth == 0
        release.set()
        await holder

    async def test_full_queue_answers_queue_full(self) -> None:
        """Past max_queue the lease raises QueueFull at once, with a Retry-After of at least 1."""
        gate = make(1, max_queue=1)
        release, log = asyncio.Event(), list[str]()
        tasks = [asyncio.create_task(hold(gate, c, release, log)) for c in ("a", "b")]
        await until(lambda: (gate.busy, gate.depth) == (1, 1), "a to hold the lane, b to queue")
        with pytest.raises(errors.QueueFull) as caught:
            async with gate.lane("c", "interactive"):
                pytest.fail("admitted past max_queue")
        assert caught.value.retry_after_s is not None
        assert caught.value.retry_after_s >= 1
        release.set()
        await asyncio.gather(*tasks)
        assert log == ["a", "b"]

    async def test_close_refuses_queued_and_new_requests(self) -> None:
        """close() answers every waiter with Draining and refuses later leases; holders finish."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: log == ["a"], "a to hold the lane")
        waiters = [asyncio.create_task(hold(gate, c, release, log)) for c in ("b", "c")]
        await until(lambda: gate.depth == 2, "b and c to queue")
        assert gate.close() == 2
        for waiter in waiters:
            with pytest.raises(errors.Draining):
                await waiter
        with pytest.raises(errors.Draining):
            async with gate.lane("d", "normal"):
                pytest.fail("admitted after close")
        order: list[str] = []

        async def idle() -> None:
            order.append("waiting")
            await gate.wait_idle()
            order.append(f"idle with {gate.busy} busy")

        waiting = asyncio.create_task(idle())
        await until(lambda: "waiting" in order, "wait_idle() to be called")
        assert order == ["waiting"]  # it blocks while a holds the lane
        order.append("release")
        release.set()
        await asyncio.gather(holder, waiting)
        assert order == ["waiting", "release", "idle with 0 busy"]
        assert log == ["a"]
