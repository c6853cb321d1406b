"""FairQueue, driven by plain synchronous calls (h11 style)."""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import dataclass

import pytest

from proxy.lanes.ring import (
    FairQueue,
    QueueFull,
    QueueSnapshot,
    SchedulerError,
    Ticket,
    TicketState,
)


def make(lanes: int = 1, *, max_queue: int = 10_000, aging_s: float = 30.0) -> FairQueue:
    return FairQueue(lanes, max_queue=max_queue, aging_s=aging_s)


def serve_all(queue: FairQueue, held: list[Ticket], now: float = 0.0) -> list[str]:
    """Finish `held`, then run the queue dry one ticket at a time (lanes=1); returns the
    clients in admission order."""
    for ticket in held:
        queue.finish(ticket, now)
    order: list[str] = []
    running = queue.admit(now)
    while running:
        for ticket in running:
            order.append(ticket.client)
            queue.finish(ticket, now)
        running = queue.admit(now)
    return order


def occupy(queue: FairQueue, now: float = 0.0) -> list[Ticket]:
    """Fill every lane with a ticket of client `holder`."""
    held = []
    for _ in range(queue.lanes):
        queue.submit("holder", "normal", now)
        held.extend(queue.admit(now))
    assert queue.busy == queue.lanes
    return held


class TestLanes:
    def test_never_more_than_lanes_admitted(self) -> None:
        """Under a random mix of submit, admit, finish and cancel, busy never exceeds lanes."""
        rng = random.Random(3)
        queue = make(3, aging_s=0.5)
        running: list[Ticket] = []
        queued: dict[int, Ticket] = {}
        for step in range(3_000):
            now = step * 0.01
            action = rng.random()
            if action < 0.5:
                priority = rng.choice(("batch", "normal", "interactive"))
                ticket = queue.submit(f"c{rng.randrange(7)}", priority, now)
                queued[ticket.id] = ticket
            elif action < 0.75 and running:
                queue.finish(running.pop(rng.randrange(len(running))), now)
            elif action < 0.85 and queued:
                queue.cancel(queued.pop(rng.choice(list(queued))))
            for ticket in queue.admit(now):
                assert queued.pop(ticket.id) is ticket
                running.append(ticket)
            assert queue.busy == len(running) <= 3
            assert len({t.lane for t in running}) == len(running)
            assert queue.depth == len(queued)
            assert queue.busy == 3 or queue.depth == 0  # a free lane never idles beside a queue

    def test_lowest_free_lane_first(self) -> None:
        """Admission takes the lowest free lane number, so a freed lane is reused."""
        queue = make(3)
        for _ in range(3):
            queue.submit("a", "normal", 0.0)
        first, second, third = queue.admit(0.0)
        assert [first.lane, second.lane, third.lane] == [0, 1, 2]
        queue.finish(second, 1.0)
        queue.submit("b", "normal", 1.0)
        (again,) = queue.admit(1.0)
        assert again.lane == 1

    def test_upstreams_have_their_own_lanes(self) -> None:
        """Lanes belong to an upstream: one being full does not hold back another."""
        queue = FairQueue({"a": 1, "b": 2}, max_queue=10, aging_s=30.0)
        tickets = [queue.submit("c", "normal", 0.0, upstream=u) for u in ("a", "a", "b", "b")]
        admitted = queue.admit(0.0)
        assert [tickets[0], tickets[2], tickets[3]] == admitted
        assert tickets[1].state == TicketState.QUEUED
        assert queue.snapshot().by_upstream == {"a": (1, 1, 1), "b": (2, 2, 0)}


class TestFairness:
    def test_round_robin_between_clients(self) -> None:
        """Clients take turns in the order they joined; each client's tickets stay FIFO."""
        queue = make(1)
        held = occupy(queue)
        for client, count in (("a", 5), ("b", 2), ("c", 1)):
            for _ in range(count):
                queue.submit(client, "normal", 0.0)
        assert serve_all(queue, held) == ["a", "b", "c", "a", "b", "a", "a", "a"]

    def test_newcomer_waits_at_most_one_turn(self) -> None:
        """A client arriving behind 100 tickets of another is admitted after at most one of them."""
        queue = make(1)
        held = occupy(queue)
        for _ in range(100):
            queue.submit("flood", "normal", 0.0)
        queue.submit("newcomer", "normal", 1.0)
        order = serve_all(queue, held, now=2.0)
        assert order.index("newcomer") <= 1

    def test_higher_class_first(self) -> None:
        """Interactive goes before normal before batch, whatever the arrival order."""
        queue = make(1)
        held = occupy(queue)
        queue.submit("b", "batch", 0.0)
        queue.submit("n", "normal", 0.1)
        queue.submit("i", "interactive", 0.2)
        assert serve_all(queue, held, now=1.0) == ["i", "n", "b"]

    def test_aging_promotes_one_class_per_aging_period(self) -> None:
        """A batch ticket is normal after aging_s and interactive after 2 x aging_s."""
        queue = make(1, aging_s=10.0)
        (holder,) = occupy(queue)
        old = queue.submit("old", "batch", 0.0)
        queue.submit("i", "interactive", 0.0)
        queue.submit("n", "normal", 9.0)
        queue.finish(holder, 12.0)
        (first,) = queue.admit(12.0)  # old is normal now, still behind interactive
        assert first.client == "i"
        queue.finish(first, 12.5)
        (second,) = queue.admit(12.5)  # n joined the normal ring before old was promoted into it
        assert second.client == "n"
        queue.finish(second, 13.0)
        assert [old] == queue.admit(13.0)

    def test_batch_is_not_starved_by_steady_interactive_load(self) -> None:
        """Under endless interactive traffic a batch ticket starts soon after 2 x aging_s."""
        queue = make(1, aging_s=5.0)
        (running,) = occupy(queue)
        batch = queue.submit("batch-client", "batch", 0.0)
        now = 0.0
        while batch.state is TicketState.QUEUED:
            now += 1.0
            for k in (0, 1):  # two arrivals per lane release: the interactive backlog grows
                queue.submit(f"i{(int(now) + k) % 3}", "interactive", now)
            queue.finish(running, now)
            (running,) = queue.admit(now)
            assert now < 30
        assert 10.0 <= now <= 13.0  # interactive at 10, then one turn per interactive client

    def test_cancelled_ticket_keeps_ring_fair(self) -> None:
        """Cancelling a queued ticket removes it; the client's other tickets keep their turns."""
        queue = make(1)
        held = occupy(queue)
        a1 = queue.submit("a", "normal", 0.0)
        queue.submit("a", "normal", 0.0)
        queue.submit("b", "normal", 0.0)
        queue.cancel(a1)
        assert a1.state == TicketState.CANCELLED
        assert serve_all(queue, held) == ["a", "b"]
        assert a1.state == TicketState.CANCELLED


class TestLimits:
    def test_queue_full_raises_with_an_estimate(self) -> None:
        """Past max_queue, submit raises QueueFull and the queue is unchanged."""
        queue = make(1, max_queue=2)
        occupy(queue)
        queue.submit("a", "normal", 0.0)
        queue.submit("a", "normal", 0.0)
        before = queue.snapshot()
        with pytest.raises(QueueFull) as caught:
            queue.submit("b", "normal", 0.0)
        assert caught.value.depth == 2
        assert caught.value.wait_estimate_s > 0
        assert before == queue.snapshot()

    def test_free_lane_admits_even_with_zero_max_queue(self) -> None:
        """max_queue bounds waiting, not running: a free lane still takes a request."""
        queue = make(2, max_queue=0)
        queue.submit("a", "normal", 0.0)
        assert len(queue.admit(0.0)) == 1
        queue.submit("a", "normal", 0.0)
        with pytest.raises(QueueFull):
            queue.submit("a", "normal", 0.0)

    def test_wait_estimate_follows_measured_hold_time(self) -> None:
        """The estimate scales with the measured lane-hold time and the queue depth."""
        queue = make(2)
        for _ in range(2):
            queue.submit("a", "normal", 0.0)
        for ticket in queue.admit(0.0):
            queue.finish(ticket, 4.0)
        occupy(queue, 4.0)
        for _ in range(3):
            queue.submit("a", "normal", 4.0)
        assert pytest.approx(queue.wait_estimate_s()) == 8.0  # (3 + 1) / 2 lanes x 4 s

    def test_drain_cancels_every_queued_ticket(self) -> None:
        """drain() returns the queued tickets in submission order and leaves none behind."""
        queue = make(1)
        (holder,) = occupy(queue)
        waiting = [queue.submit(c, p, 0.0) for c, p in (("a", "batch"), ("b", "interactive"))]
        assert waiting == queue.drain()
        assert all(t.state is TicketState.CANCELLED for t in waiting)
        assert (queue.depth, queue.busy) == (0, 1)
        queue.finish(holder, 1.0)
        assert queue.admit(1.0) == []


@dataclass
class Scene:
    """One lane: client a's ticket runs, client b's waits."""

    queue: FairQueue
    running: Ticket
    queued: Ticket

    def unchanged_since(self, before: QueueSnapshot) -> bool:
        return self.queue.snapshot() == before


class TestIllegalCalls:
    @pytest.fixture(name="scene")
    def _scene(self) -> Scene:
        queue = make(1)
        running = queue.submit("a", "normal", 0.0)
        queue.admit(0.0)
        return Scene(queue, running, queue.submit("b", "batch", 0.0))

    def test_finish_of_a_queued_ticket(self, scene: Scene) -> None:
        """finish() needs an admitted ticket."""
        before = scene.queue.snapshot()
        with pytest.raises(SchedulerError):
            scene.queue.finish(scene.queued, 1.0)
        assert scene.unchanged_since(before)

    def test_cancel_of_a_running_ticket(self, scene: Scene) -> None:
        """cancel() needs a queued ticket."""
        before = scene.queue.snapshot()
        with pytest.raises(SchedulerError):
            scene.queue.cancel(scene.running)
        assert scene.unchanged_since(before)

    def test_finish_twice(self, scene: Scene) -> None:
        """A lane is given back once."""
        scene.queue.finish(scene.running, 1.0)
        before = scene.queue.snapshot()
        with pytest.raises(SchedulerError):
            scene.queue.finish(scene.running, 1.0)
        assert scene.unchanged_since(before)

    def test_cancel_twice(self, scene: Scene) -> None:
        """A queued ticket leaves once."""
        scene.queue.cancel(scene.queued)
        before = scene.queue.snapshot()
        with pytest.raises(SchedulerError):
            scene.queue.cancel(scene.queued)
        assert scene.unchanged_since(before)

    def test_foreign_ticket(self, scene: Scene) -> None:
        """A ticket of another queue is refused, even with a matching id."""
        stranger = make(1).submit("x", "normal", 0.0)
        before = scene.queue.snapshot()
        with pytest.raises(SchedulerError):
            scene.queue.cancel(stranger)
        with pytest.raises(SchedulerError):
            scene.queue.finish(stranger, 0.0)
        assert scene.unchanged_since(before)

    @pytest.mark.parametrize(("priority", "upstream"), [("urgent", "default"), ("normal", "nope")])
    def test_unknown_priority_or_upstream(self, scene: Scene, priority: str, upstream: str) -> None:
        """submit() validates its arguments before touching anything."""
        before = scene.queue.snapshot()
        with pytest.raises(SchedulerError):
            scene.queue.submit("c", priority, 1.0, upstream=upstream)
        assert scene.unchanged_since(before)

    def test_bad_construction(self) -> None:
        """Every upstream needs a lane; aging needs a positive period."""
        with pytest.raises(SchedulerError):
            FairQueue({"a": 0}, max_queue=1, aging_s=1.0)
        with pytest.raises(SchedulerError):
            FairQueue(1, max_queue=1, aging_s=0.0)


class TestSnapshot:
    def test_counts_are_incremental(self) -> None:
        """depth, by_class, by_client and the oldest wait follow every call."""
        queue = make(1)
        occupy(queue, 0.5)
        queue.submit("a", "batch", 1.0)
        b = queue.submit("b", "interactive", 2.0)
        queue.submit("b", "normal", 3.0)
        snap = queue.snapshot()
        assert (snap.lanes, snap.busy, snap.depth) == (1, 1, 3)
        assert snap.by_class == {"interactive": 1, "normal": 1, "batch": 1}
        assert snap.by_client == {"a": 1, "b": 2}
        assert snap.oldest_enqueued_at == 1.0
        queue.cancel(b)
        assert queue.snapshot().by_client == {"a": 1, "b": 1}

    def test_ten_thousand_queued_stay_cheap(self) -> None:
        """10,000 tickets from 100 clients go through submit, cancel and admit in linear time."""
        queue = make(4)
        tickets = [queue.submit(f"c{i % 100}", "normal", i * 1e-4) for i in range(10_000)]
        for ticket in tickets[1::2]:
            queue.cancel(ticket)
        served = 0
        running = queue.admit(2.0)
        while running:
            for ticket in running:
                queue.finish(ticket, 2.0)
                served += 1
            running = queue.admit(2.0)
        assert served == 5_000
        assert (queue.depth, queue.busy) == (0, 0)


@pytest.mark.parametrize("module", ["lanes.ring", "ollama", "relay.headers", "errors"])
def test_pure_module_imports_no_io(module: str) -> None:
    """The scheduler and the request knowledge are pure: importing them loads no asyncio."""
    code = f"import sys, proxy.{module}; print(sorted({{'asyncio', 'aiohttp'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
