"""LaneGate: waiting, cancellation, wait limits, placement and drain, on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from proxy import errors
from proxy.lanes.placement import Host
from proxy.lanes.queue import LaneQueue
from proxy.relay.gate import LaneGate
from tests.proxy.support import eventually


def make(
    lanes: int = 1, *, max_queue: int = 100, hosts: list[Host] | None = None, **max_wait: float
) -> LaneGate:
    """A gate over one host "default" with `lanes` lanes (or over `hosts`)."""
    queue = LaneQueue(
        hosts or [Host("default", lanes)], max_queue=max_queue, aging_s=30.0, affinity_wait_s=0
    )
    return LaneGate(queue, max_wait_s=max_wait)


async def hold(
    gate: LaneGate,
    client: str,
    release: asyncio.Event,
    log: list[str],
    entered: asyncio.Event | None = None,
) -> None:
    """Hold a lane as `client` until `release` is set; log and signal `entered` on entry."""
    async with gate.lane(client, "normal"):
        log.append(client)
        if entered is not None:
            entered.set()
        await release.wait()


async def signalled(event: asyncio.Event, what: str, within: float = 10.0) -> None:
    """Wait for `event`; fail naming `what` if it is not set within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            await event.wait()
    except TimeoutError:
        raise AssertionError(f"{what} did not happen within {within} s") from None


async def queued(gate: LaneGate, depth: int) -> None:
    """Wait until `depth` requests are queued for a lane."""
    await eventually(lambda: gate.depth == depth)


class TestLaneGate:
    async def test_free_lane_is_taken_at_once(self) -> None:
        """With a lane free the lease is granted without waiting and names its lane and host."""
        gate = make(2)
        async with gate.lane("a", "normal") as lease:
            assert (lease.lane, lease.upstream, gate.busy) == (0, "default", 1)
            assert lease.queue_s == 0.0
        assert gate.busy == 0

    async def test_lease_names_the_host_it_was_bound_to(self) -> None:
        """`model` and `avoid` steer placement; `lease.upstream` tells where the lane is."""
        gate = make(hosts=[Host("x", 1), Host("y", 1, first_lane=1)])
        async with gate.lane("a", "normal", model="m", avoid=frozenset({"x"})) as lease:
            assert (lease.upstream, lease.lane) == ("y", 1)

    async def test_waiter_starts_when_the_holder_leaves(self) -> None:
        """A queued lease is admitted as soon as the lane is given back."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        b_entered = asyncio.Event()
        first = asyncio.create_task(hold(gate, "a", release, log))
        await eventually(lambda: gate.busy == 1)
        second = asyncio.create_task(hold(gate, "b", asyncio.Event(), log, b_entered))
        await queued(gate, 1)
        assert log == ["a"]
        release.set()
        await first
        await signalled(b_entered, "b's admission")
        assert (log, gate.busy, gate.depth) == (["a", "b"], 1, 0)
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
        assert gate.busy == 0

    async def test_cancelled_waiter_leaves_the_queue(self) -> None:
        """A waiter whose task is cancelled is removed and never admitted."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await eventually(lambda: gate.busy == 1)
        waiter = asyncio.create_task(hold(gate, "b", asyncio.Event(), log))
        await queued(gate, 1)
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
        b_entered = asyncio.Event()
        holder = asyncio.create_task(hold(gate, "a", asyncio.Event(), log))
        await eventually(lambda: gate.busy == 1)
        nxt = asyncio.create_task(hold(gate, "b", asyncio.Event(), log, b_entered))
        await queued(gate, 1)
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        await signalled(b_entered, "b's admission")
        assert (log, gate.busy) == (["a", "b"], 1)
        assert gate.abort_running() == 1
        with pytest.raises(asyncio.CancelledError):
            await nxt
        assert gate.busy == 0

    async def test_wait_limit_answers_queue_timeout(self) -> None:
        """A lease that waits longer than its class's limit raises QueueTimeout with Retry-After."""
        gate = make(1, batch=0.05)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await eventually(lambda: gate.busy == 1)
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
        await eventually(lambda: (gate.busy, gate.depth) == (1, 1))
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
        await eventually(lambda: gate.busy == 1)
        waiters = [asyncio.create_task(hold(gate, c, release, log)) for c in ("b", "c")]
        await queued(gate, 2)
        assert gate.close() == 2
        for waiter in waiters:
            with pytest.raises(errors.Draining):
                await waiter
        with pytest.raises(errors.Draining):
            async with gate.lane("d", "normal"):
                pytest.fail("admitted after close")
        release.set()
        await holder
        assert (log, gate.busy) == (["a"], 0)

    async def test_wait_idle_returns_only_once_no_lane_is_held(self) -> None:
        """wait_idle() started while a lane is held returns after, and only after, its release."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await eventually(lambda: gate.busy == 1)

        async def busy_when_idle() -> int:
            await gate.wait_idle()
            return gate.busy

        idle = asyncio.create_task(busy_when_idle())  # runs before the holder wakes up
        release.set()
        await holder
        assert await asyncio.wait_for(idle, 10) == 0
