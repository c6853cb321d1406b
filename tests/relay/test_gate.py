"""LaneGate: waiting, cancellation, wait limits, placement, moves and drain, on a real loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from proxy import errors
from proxy.lanes.placement import Host
from proxy.lanes.queue import LaneQueue
from proxy.relay.classify import RequestFacts, Route
from proxy.relay.gate import LaneGate, Lease
from tests.waiting import PATIENCE_S, wait_for


def make(
    lanes: int = 1, *, max_queue: int = 100, hosts: list[Host] | None = None, **max_wait: float
) -> LaneGate:
    """A gate over one host "default" with `lanes` lanes (or over `hosts`)."""
    queue = LaneQueue(
        hosts or [Host("default", lanes)], max_queue=max_queue, aging_s=30.0, affinity_wait_s=0
    )
    return LaneGate(queue, max_wait_s=max_wait)


def ask(client: str, priority: str = "normal", model: str = "m:latest") -> RequestFacts:
    """The facts of one laned request from `client`."""
    return RequestFacts(
        route=Route.LANE,
        method="POST",
        path="/api/chat",
        client=client,
        priority=priority,
        model=model,
        model_key=model,
    )


async def hold(
    gate: LaneGate,
    client: str,
    release: asyncio.Event,
    log: list[str],
    entered: asyncio.Event | None = None,
) -> None:
    """Hold a lane as `client` until `release` is set; log and signal `entered` on entry."""
    async with gate.lane(ask(client)):
        log.append(client)
        if entered is not None:
            entered.set()
        await release.wait()


async def signalled(event: asyncio.Event, what: str) -> None:
    """Wait for `event`; fail naming `what` if it never comes."""
    await wait_for(event.is_set, timeout=PATIENCE_S, what=what, interval=0.001)


async def until(check: Callable[[], bool], what: str) -> None:
    """Let the other tasks run until the gate's state shows `check`."""
    await wait_for(check, timeout=PATIENCE_S, what=what, interval=0.001)


async def queued(gate: LaneGate, depth: int) -> None:
    """Wait until `depth` requests are queued for a lane."""
    await until(lambda: gate.depth == depth, f"{depth} queued")


class TestLaneGate:
    async def test_free_lane_is_taken_at_once(self) -> None:
        """With a lane free the lease is granted without waiting and names its lane and host."""
        gate = make(2)
        async with gate.lane(ask("a")) as lease:
            assert (lease.lane, lease.upstream, gate.busy) == (0, "default", 1)
            assert lease.queue_s == 0.0
        assert gate.busy == 0

    async def test_peak_busy_counts_the_most_lanes_held_at_once(self) -> None:
        """peak_busy is the gate's own high-water mark of lanes held, not a sample."""
        gate = make(3)
        assert gate.peak_busy == 0
        async with gate.lane(ask("a")), gate.lane(ask("b")):
            assert (gate.busy, gate.peak_busy) == (2, 2)
        async with gate.lane(ask("c")):
            assert (gate.busy, gate.peak_busy) == (1, 2)

    async def test_move_takes_a_lane_on_another_host_and_reports_it(self) -> None:
        """`move(avoid=x)` trades the lane on x for one elsewhere; on_admitted hears both."""
        gate = make(hosts=[Host("x", 1), Host("y", 1)])
        seen: list[tuple[str, int]] = []

        def admitted(lease: Lease) -> None:
            seen.append((lease.upstream, lease.lane))

        async with gate.lane(ask("a"), on_admitted=admitted) as lease:
            first = lease.upstream
            await lease.move(avoid=first)
            assert lease.upstream != first
            assert gate.busy == 1
        assert [host for host, _ in seen] == [first, lease.upstream]
        assert gate.busy == 0

    async def test_waiter_starts_when_the_holder_leaves(self) -> None:
        """A queued lease is admitted as soon as the lane is given back."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        b_entered = asyncio.Event()
        first = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: gate.busy == 1, "a lane held")
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
        await until(lambda: gate.busy == 1, "a lane held")
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
        await until(lambda: gate.busy == 1, "a lane held")
        nxt = asyncio.create_task(hold(gate, "b", asyncio.Event(), log, b_entered))
        await queued(gate, 1)
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        await signalled(b_entered, "b's admission")
        assert (log, gate.busy) == (["a", "b"], 1)
        nxt.cancel()
        with pytest.raises(asyncio.CancelledError):
            await nxt
        assert gate.busy == 0

    async def test_wait_limit_answers_queue_timeout(self) -> None:
        """A lease that waits longer than its class's limit raises QueueTimeout with Retry-After."""
        gate = make(1, batch=0.05)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: gate.busy == 1, "a lane held")
        with pytest.raises(errors.QueueTimeout) as caught:
            async with gate.lane(ask("b", "batch")):
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
        await until(lambda: (gate.busy, gate.depth) == (1, 1), "one holder, one waiter")
        with pytest.raises(errors.QueueFull) as caught:
            async with gate.lane(ask("c", "interactive")):
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
        await until(lambda: gate.busy == 1, "a lane held")
        waiters = [asyncio.create_task(hold(gate, c, release, log)) for c in ("b", "c")]
        await queued(gate, 2)
        assert gate.close() == 2
        for waiter in waiters:
            with pytest.raises(errors.Draining):
                await waiter
        with pytest.raises(errors.Draining):
            async with gate.lane(ask("d")):
                pytest.fail("admitted after close")
        release.set()
        await holder
        assert (log, gate.busy) == (["a"], 0)


class TestOnQueued:
    async def test_an_arrival_that_waits_is_told_once_with_its_position(self) -> None:
        """`on_queued` hears once, in the waiting task, of an arrival that has to wait, after
        its arrival position is set."""
        gate = make(1)
        release, log = asyncio.Event(), list[str]()
        holder = asyncio.create_task(hold(gate, "a", release, log))
        await until(lambda: gate.busy == 1, "a lane held")
        told: list[tuple[int, bool]] = []

        def on_queued(lease: Lease) -> None:
            told.append((lease.position, asyncio.current_task() is waiter))

        async def wait() -> None:
            async with gate.lane(ask("b"), on_queued=on_queued):
                pass

        waiter = asyncio.create_task(wait())
        await queued(gate, 1)
        release.set()
        await asyncio.gather(holder, waiter)
        assert told == [(1, True)]

    async def test_an_arrival_with_a_free_lane_is_not_told(self) -> None:
        """A lease granted at once never calls `on_queued`."""
        gate = make(1)
        told: list[Lease] = []
        async with gate.lane(ask("a"), on_queued=told.append) as lease:
            assert lease.position == 0
        assert told == []
