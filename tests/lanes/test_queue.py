"""LaneQueue, driven by plain synchronous calls (h11 style): one class per rule of its header."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from proxy.lanes.lanemap import Parallel
from proxy.lanes.placement import Host
from proxy.lanes.queue import Fairness, HostSnapshot, LaneQueue, Overflow, SchedulerError
from proxy.lanes.ring import Ticket, TicketState
from tests.lanes.reference import ReferenceQueue, may_serve, startable

A, B = "a:latest", "b:latest"


def make(
    *hosts: Host,
    max_queue: int = 10_000,
    aging_s: float = 30.0,
    affinity: float = 0.0,
    fairness: Fairness | None = None,
) -> LaneQueue:
    """A queue over `hosts` (one host "default" with one lane if none is given)."""
    return LaneQueue(
        list(hosts) or [Host("default", 1)],
        max_queue=max_queue,
        aging_s=aging_s,
        affinity_wait_s=affinity,
        fairness=fairness,
    )


REQUESTS = Fairness(policy="requests")


def one_host(
    lanes: int = 1,
    *,
    max_queue: int = 10_000,
    aging_s: float = 30.0,
    fairness: Fairness | None = None,
) -> LaneQueue:
    """The single-host case: one Host named "default"."""
    return make(Host("default", lanes), max_queue=max_queue, aging_s=aging_s, fairness=fairness)


def serve_all(queue: LaneQueue, held: list[Ticket], now: float = 0.0) -> list[str]:
    """Finish `held`, then run the queue dry one ticket at a time; returns the clients in
    admission order."""
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


def occupy(queue: LaneQueue, now: float = 0.0) -> list[Ticket]:
    """Fill every lane with a ticket of client `holder`."""
    held = []
    for _ in range(queue.lanes):
        queue.submit("holder", "normal", now)
        held.extend(queue.admit(now))
    assert queue.busy == queue.lanes
    return held


def _slots(host: Host) -> dict[str, list[int]]:
    return {model: sorted(held) for model, held in host.slots.items()}


def counts(row: HostSnapshot) -> tuple[object, ...]:
    """A host row without its model rows: name, lanes, busy, healthy, eligible, runnable."""
    return (row.name, row.lanes, row.busy, row.healthy, row.eligible, row.runnable)


def state(queue: LaneQueue) -> tuple[object, ...]:
    """Everything observable about a queue: counters, hosts and the ring's turns."""
    hosts = tuple(
        (h.healthy, h.installed, tuple(h.loaded), _slots(h), dict(h.running), h.swaps)
        for h in queue.hosts
    )
    turns = tuple(queue.ring.turns(rank) for rank in range(3))
    return queue.snapshot(), hosts, turns, queue.ring.sizes(), queue.wait_estimate_s()


class TestRule1Purity:
    """Rule 1: no I/O, no asyncio, no clock; times are the `now` values passed in."""

    @pytest.mark.parametrize("module", ["ring", "queue", "placement", "backlog"])
    def test_imports_no_io(self, module: str) -> None:
        """Importing a lanes module loads neither asyncio nor aiohttp."""
        probe = "print(sorted({'asyncio', 'aiohttp'} & set(sys.modules)))"
        code = f"import sys, proxy.lanes.{module}; {probe}"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"

    def test_times_are_the_callers(self) -> None:
        """Any monotonic seconds work: the ticket carries exactly the `now` values given."""
        queue = one_host()
        ticket = queue.submit("a", "normal", -1e9)
        queue.admit(-1e9 + 2.5)
        assert (ticket.enqueued_at, ticket.admitted_at) == (-1e9, -1e9 + 2.5)


@dataclass
class Scene:
    """Two hosts, one lane each: client a's ticket runs on x, client b's waits."""

    queue: LaneQueue
    running: Ticket
    queued: Ticket


class TestRule2LifeCycle:
    """Rule 2: QUEUED -> ADMITTED -> FINISHED or QUEUED -> CANCELLED; anything else raises
    SchedulerError and leaves the state unchanged."""

    @pytest.fixture(name="scene")
    def _scene(self) -> Scene:
        x = Host("x", 1)
        x.observe_installed([A])
        queue = make(x, Host("y", 1))
        queue.set_health("y", False)
        running = queue.submit("a", "normal", 0.0, model=A)
        queue.admit(0.0)
        return Scene(queue, running, queue.submit("b", "batch", 0.0, model=A))

    def test_the_legal_path(self) -> None:
        """submit, admit, finish; and submit, cancel."""
        queue = one_host()
        first, second = queue.submit("a", "normal", 0.0), queue.submit("a", "normal", 0.0)
        assert [first.state, second.state] == [TicketState.QUEUED] * 2
        assert [first] == queue.admit(0.0)
        assert first.state == TicketState.ADMITTED
        queue.cancel(second)
        queue.finish(first, 1.0)
        assert [first.state, second.state] == [TicketState.FINISHED, TicketState.CANCELLED]

    def test_finish_of_a_queued_ticket(self, scene: Scene) -> None:
        """finish() needs an admitted ticket."""
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.finish(scene.queued, 1.0)
        assert (before, TicketState.QUEUED) == (state(scene.queue), scene.queued.state)

    def test_cancel_of_a_running_ticket(self, scene: Scene) -> None:
        """cancel() needs a queued ticket."""
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.cancel(scene.running)
        assert (before, TicketState.ADMITTED) == (state(scene.queue), scene.running.state)

    def test_finish_twice(self, scene: Scene) -> None:
        """A lane is given back once."""
        scene.queue.finish(scene.running, 1.0)
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.finish(scene.running, 1.0)
        assert before == state(scene.queue)

    def test_cancel_twice(self, scene: Scene) -> None:
        """A queued ticket leaves once."""
        scene.queue.cancel(scene.queued)
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.cancel(scene.queued)
        assert before == state(scene.queue)

    def test_cancel_of_a_bound_ticket(self, scene: Scene) -> None:
        """A ticket bound to a host can no longer be cancelled, only finished."""
        scene.queue.set_health("y", True)
        scene.queue.admit(1.0)
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.cancel(scene.queued)
        assert before == state(scene.queue)

    def test_foreign_ticket(self, scene: Scene) -> None:
        """A ticket of another queue is refused, even with a matching id."""
        other = make(Host("x", 1))
        stranger = other.submit("x", "normal", 0.0, model=A)
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.cancel(stranger)
        other.admit(0.0)
        with pytest.raises(SchedulerError):
            scene.queue.finish(stranger, 0.0)
        assert before == state(scene.queue)

    def test_unknown_priority(self, scene: Scene) -> None:
        """submit() validates its priority before touching anything."""
        before = state(scene.queue)
        with pytest.raises(SchedulerError):
            scene.queue.submit("c", "urgent", 1.0, model=A)
        assert before == state(scene.queue)

    @pytest.mark.parametrize("call", ["host", "set_health", "observe_host"])
    def test_unknown_host(self, scene: Scene, call: str) -> None:
        """A host call naming no host of this queue is refused."""
        before = state(scene.queue)
        calls: dict[str, Callable[[], object]] = {
            "host": lambda: scene.queue.host("nope"),
            "set_health": lambda: scene.queue.set_health("nope", False),
            "observe_host": lambda: scene.queue.observe_host("nope", loaded=[B], installed=[B]),
        }
        with pytest.raises(SchedulerError):
            calls[call]()
        assert before == state(scene.queue)

    @pytest.mark.parametrize(
        ("hosts", "max_queue", "aging_s", "affinity"),
        [
            ([], 1, 1.0, 0.0),
            ([Host("x", 1), Host("x", 1)], 1, 1.0, 0.0),
            ([Host("x", 1)], -1, 1.0, 0.0),
            ([Host("x", 1)], 1, 0.0, 0.0),
            ([Host("x", 1)], 1, 1.0, -1.0),
        ],
    )
    def test_bad_construction(
        self, hosts: list[Host], max_queue: int, aging_s: float, affinity: float
    ) -> None:
        """A queue needs hosts with distinct names, max_queue >= 0, aging_s > 0, affinity >= 0."""
        with pytest.raises(SchedulerError):
            LaneQueue(hosts, max_queue=max_queue, aging_s=aging_s, affinity_wait_s=affinity)


class TestRule3Classes:
    """Rule 3: interactive before normal before batch."""

    def test_higher_class_first(self) -> None:
        """Interactive goes before normal before batch, whatever the arrival order."""
        queue = one_host()
        held = occupy(queue)
        queue.submit("b", "batch", 0.0)
        queue.submit("n", "normal", 0.1)
        queue.submit("i", "interactive", 0.2)
        assert serve_all(queue, held, now=1.0) == ["i", "n", "b"]


class TestRule4RequestTurns:
    """Rule 4 with `requests`: round-robin between the client keys of a class, whatever the cost."""

    def test_round_robin_between_clients(self) -> None:
        """Clients take turns in the order they joined, however large their prompts."""
        queue = one_host(fairness=REQUESTS)
        held = occupy(queue)
        for client, count, prompt in (("a", 5, 8000), ("b", 2, 10), ("c", 1, 10)):
            for _ in range(count):
                queue.submit(client, "normal", 0.0, prompt_tokens=prompt)
        assert serve_all(queue, held) == ["a", "b", "c", "a", "b", "a", "a", "a"]

    @pytest.mark.parametrize("lanes", [1, 3])
    def test_newcomer_waits_at_most_one_turn(self, lanes: int) -> None:
        """A client arriving behind 100 tickets of another is admitted after at most one of them."""
        queue = one_host(lanes, fairness=REQUESTS)
        held = occupy(queue)
        for _ in range(100):
            queue.submit("flood", "normal", 0.0)
        queue.submit("newcomer", "normal", 1.0)
        assert serve_all(queue, held, now=2.0).index("newcomer") <= 1

    def test_cancelled_ticket_keeps_ring_fair(self) -> None:
        """Cancelling a queued ticket removes it; the client's other tickets keep their turns."""
        queue = one_host(fairness=REQUESTS)
        held = occupy(queue)
        a1 = queue.submit("a", "normal", 0.0)
        queue.submit("a", "normal", 0.0)
        queue.submit("b", "normal", 0.0)
        queue.cancel(a1)
        assert serve_all(queue, held) == ["a", "b"]
        assert a1.state == TicketState.CANCELLED


class TestRule5Aging:
    """Rule 5: one class up per `aging_s` in a class, applied when admit() runs."""

    def test_aging_promotes_one_class_per_aging_period(self) -> None:
        """A batch ticket is normal after aging_s and interactive after 2 x aging_s."""
        queue = one_host(aging_s=10.0)
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
        queue = one_host(aging_s=5.0)
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

    def test_by_class_counts_the_class_asked_for(self) -> None:
        """The snapshot counts a promoted ticket under the priority it was submitted with."""
        queue = make(Host("x", 2, overrides={A: 1}), aging_s=1.0)
        queue.submit("a", "normal", 0.0, model=A)
        queue.submit("a", "batch", 0.0, model=A)  # blocked by A's limit beside a free lane
        assert len(queue.admit(5.0)) == 1
        assert queue.ring.sizes() == (1, 0, 0)
        assert queue.snapshot().by_class["batch"] == 1


class TestRules3To5Reference:
    """Rules 3-5 together (`requests`): the queue orders exactly like a naive reading of them."""

    @pytest.mark.parametrize("seed", range(4))
    def test_same_order_as_the_reference(self, seed: int) -> None:
        """Random submits, cancels and finishes admit the same tickets in the same order, and
        the prompt sizes (which `tokens` would weigh) change nothing."""
        rng = random.Random(seed)
        queue = make(Host("default", 2), aging_s=2.0, fairness=REQUESTS)
        model = ReferenceQueue(2, aging_s=2.0)
        queued: dict[int, Ticket] = {}
        running: list[Ticket] = []
        for step in range(600):
            now = step * 0.1
            roll = rng.random()
            if roll < 0.5:
                client = f"c{rng.randrange(5)}"
                prio = rng.choice(["interactive", "normal", "batch"])
                ticket = queue.submit(client, prio, now, prompt_tokens=rng.randrange(10_000))
                assert ticket.id == model.submit(client, prio, now)
                queued[ticket.id] = ticket
            elif roll < 0.6 and queued:
                ticket = queued.pop(rng.choice(sorted(queued)))
                queue.cancel(ticket)
                model.cancel(ticket.id)
            elif running:
                queue.finish(running.pop(rng.randrange(len(running))), now)
                model.finish()
            admitted = queue.admit(now)
            assert model.admit(now) == [t.id for t in admitted]
            for ticket in admitted:
                del queued[ticket.id]
            running.extend(admitted)


class TestRule6Capacity:
    """Rule 6: never more than `lanes` per host, nor `model_lanes[m]` of model m."""

    def test_never_more_than_lanes_admitted(self) -> None:
        """Under a random mix of submit, admit, finish and cancel, busy never exceeds lanes."""
        rng = random.Random(3)
        queue = one_host(3, aging_s=0.5)
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

    def test_fills_every_host_and_never_more_than_its_lanes(self) -> None:
        """Twenty tickets over hosts of 2 and 3 lanes bind five, two and three."""
        queue = make(Host("x", 2), Host("y", 3))
        for i in range(20):
            queue.submit(f"c{i % 4}", "normal", 0.0, model=A)
        got = queue.admit(1.0)
        assert sorted(t.upstream for t in got) == ["x", "x", "y", "y", "y"]
        assert queue.admit(1.0) == []

    def test_per_model_lane_limit(self) -> None:
        """A model at its own lane limit waits while another model takes the free lanes."""
        queue = make(Host("x", 4, overrides={A: 1}))
        for model in (A, A, B):
            queue.submit("c", "normal", 0.0, model=model)
        assert [t.model for t in queue.admit(0.0)] == [A, B]
        assert (queue.busy, queue.depth) == (2, 1)


class TestRule7ModelPicture:
    """Rule 7: what a host has installed and loaded, as bindings and polls tell it."""

    def test_binding_loads_the_model(self) -> None:
        """A bound model counts as loaded on its host, most recent last."""
        queue = make(Host("x", 2))
        queue.observe_host("x", loaded=[A])
        queue.submit("c", "normal", 0.0, model=B)
        queue.admit(0.0)
        assert list(queue.host("x").loaded) == [A, B]

    def test_observe_host_keeps_running_models(self) -> None:
        """`/api/ps` replaces the loaded set, except models holding lanes there."""
        queue = make(Host("x", 2))
        queue.submit("c", "normal", 0.0, model=A)
        queue.admit(0.0)
        queue.observe_host("x", loaded=[B])
        assert {A, B} == set(queue.host("x").loaded)
        queue.observe_host("x", loaded=[])
        assert list(queue.host("x").loaded) == [A]

    def test_observe_host_installed(self) -> None:
        """`/api/tags` replaces the installed set; None leaves each part as it was."""
        queue = make(Host("x", 2))
        queue.observe_host("x", installed=[A, B])
        queue.observe_host("x", loaded=[A])
        queue.observe_host("x", installed=[B])
        assert (frozenset({B}), [A]) == (queue.host("x").installed, list(queue.host("x").loaded))

    def test_an_evicting_binding_counts_a_swap(self) -> None:
        """Binding a cold model onto a full host counts one swap."""
        queue = make(Host("x", 1, max_loaded=1))
        for model in (A, A, B):
            queue.submit("c", "normal", 0.0, model=model)
        swaps = []
        running = queue.admit(0.0)
        while running:
            queue.finish(running[0], 1.0)
            swaps.append(queue.host("x").swaps)
            running = queue.admit(1.0)
        assert swaps == [0, 0, 1]


class TestRule8LateBinding:
    """Rule 8: a ticket is bound to a host only when a lane frees."""

    def test_a_ticket_is_bound_only_when_a_lane_frees(self) -> None:
        """A waiting ticket names no host; it takes the lane that frees first."""
        queue = make(Host("x", 1), Host("y", 1))
        first = [queue.submit("c", "normal", 0.0, model=A) for _ in range(3)]
        queue.admit(0.0)
        assert (first[2].upstream, first[2].state) == ("", TicketState.QUEUED)
        queue.finish(first[1], 1.0)
        queue.admit(1.0)
        assert (first[1].upstream, first[1].lane) == (first[2].upstream, first[2].lane)


class TestRule9Placement:
    """Rule 9: the fair head goes to the host `choose()` picks."""

    def test_warm_first_then_round_robin(self) -> None:
        """Warm hosts take the model while they have lanes; then the cold one."""
        queue = make(Host("x", 2), Host("y", 2))
        queue.observe_host("y", loaded=[B])
        queue.submit("c", "normal", 0.0, model=B)
        queue.submit("c", "normal", 0.0, model=B)
        assert [t.upstream for t in queue.admit(0.0)] == ["y", "y"]
        queue.submit("c", "normal", 0.0, model=B)
        assert [t.upstream for t in queue.admit(0.0)] == ["x"]

    def test_ties_go_round_robin(self) -> None:
        """Equally warm, equally loaded hosts take turns."""
        queue = make(Host("x", 2), Host("y", 2))
        queue.observe_host("x", loaded=[A])
        queue.observe_host("y", loaded=[A])
        for _ in range(4):
            queue.submit("c", "normal", 0.0, model=A)
        assert [t.upstream for t in queue.admit(0.0)] == ["x", "y", "x", "y"]

    def test_avoid_keeps_a_retry_off_the_failed_host(self) -> None:
        """A ticket that avoids x goes to y."""
        queue = make(Host("x", 2), Host("y", 2))
        ticket = queue.submit("c", "normal", 0.0, model=A, avoid=["x"])
        assert [ticket] == queue.admit(0.0)
        assert ticket.upstream == "y"

    def test_never_a_host_without_the_model_while_another_has_it(self) -> None:
        """With the model only on x, y's free lanes stay out of it."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.observe_host("x", installed=[A])
        queue.observe_host("y", installed=[B])
        for _ in range(2):
            queue.submit("c", "normal", 0.0, model=A)
        assert [t.upstream for t in queue.admit(0.0)] == ["x"]
        assert queue.depth == 1


class TestRule10Bypass:
    """Rule 10: a blocked head does not idle the lanes other tickets could use."""

    def test_a_blocked_head_does_not_idle_other_hosts(self) -> None:
        """The head for a full host waits; y takes the next ticket it may serve."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.observe_host("x", installed=[A])
        queue.observe_host("y", installed=[B])
        queue.submit("c1", "normal", 0.0, model=A)
        queue.submit("c2", "normal", 0.0, model=A)  # only x has A; x will be full
        queue.submit("c3", "normal", 0.0, model=B)
        got = queue.admit(0.0)
        assert sorted((t.client, t.upstream) for t in got) == [("c1", "x"), ("c3", "y")]
        assert queue.depth == 1

    def test_the_head_keeps_its_turn(self) -> None:
        """A client served out of turn keeps its place; the blocked head goes first later."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.observe_host("x", installed=[A])
        queue.observe_host("y", installed=[B])
        queue.submit("h", "normal", 0.0, model=A)
        (holder,) = queue.admit(0.0)
        queue.submit("a", "normal", 0.0, model=A)
        queue.submit("b", "normal", 0.0, model=B)
        queue.submit("b", "normal", 0.0, model=A)
        assert [t.client for t in queue.admit(0.0)] == ["b"]  # bypass: b's B ticket on y
        assert queue.ring.turns(1) == ("a", "b")
        queue.finish(holder, 1.0)
        assert [t.client for t in queue.admit(1.0)] == ["a"]

    def test_a_model_limit_does_not_idle_the_host(self) -> None:
        """A head at its model's lane limit lets another model's ticket take the free lane."""
        queue = make(Host("x", 2, overrides={A: 1}))
        queue.submit("a", "normal", 0.0, model=A)
        queue.submit("a", "normal", 0.0, model=A)
        queue.submit("b", "normal", 0.0, model=B)
        assert [t.model for t in queue.admit(0.0)] == [A, B]

    def test_an_avoiding_ticket_does_not_block_its_model(self) -> None:
        """The oldest ticket for a model avoids y; a younger one for that model still runs there."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.submit("h", "normal", 0.0, avoid=["y"])
        (holder,) = queue.admit(0.0)
        assert holder.upstream == "x"
        queue.submit("r", "normal", 0.0, model=A, avoid=["y"])  # a retry that failed on y
        fresh = queue.submit("f", "normal", 0.0, model=A)
        assert [fresh] == queue.admit(0.0)
        assert fresh.upstream == "y"


class TestRule11Affinity:
    """Rule 11: finish the loaded model's work before a swap, for at most affinity_wait_s."""

    @staticmethod
    def _swaps(affinity: float, n: int = 40) -> int:
        """Interleaved A, B on a host that holds one model; returns the swaps."""
        queue = make(Host("x", 2, max_loaded=1), affinity=affinity)
        for i in range(n):
            queue.submit("c", "normal", 0.0, model=A if i % 2 else B)
        now, running = 0.0, queue.admit(0.0)
        while running:
            now += 0.5
            queue.finish(running.pop(0), now)
            running += queue.admit(now)
        return queue.host("x").swaps

    def test_without_affinity_every_other_request_swaps(self) -> None:
        """With affinity_wait_s = 0 interleaved models swap again and again."""
        assert self._swaps(0.0) >= 15

    def test_swaps_once_per_batch_instead_of_per_request(self) -> None:
        """With a long affinity wait the loaded model's requests go first: at most one swap."""
        assert self._swaps(60.0) <= 1

    def test_the_extra_wait_is_bounded(self) -> None:
        """A 2 s affinity wait over about 10 s of work lets a swap happen every few seconds."""
        assert 2 <= self._swaps(2.0) <= 8

    def test_interleaving_is_fine_while_models_fit(self) -> None:
        """With room for both models, fair order is kept and nothing swaps."""
        queue = make(Host("x", 1, max_loaded=2), affinity=60.0)
        for i in range(6):
            queue.submit("c", "normal", 0.0, model=A if i % 2 else B)
        order, now = [], 0.0
        running = queue.admit(now)
        while running:
            order.append(running[0].model)
            now += 1
            queue.finish(running.pop(), now)
            running = queue.admit(now)
        assert order == [B, A, B, A, B, A]
        assert queue.host("x").swaps == 0


class TestRule12QueueBound:
    """Rule 12: `max_queue` bounds waiting; Overflow carries depth and a wait estimate."""

    def test_queue_full_raises_with_an_estimate(self) -> None:
        """Past max_queue, submit raises Overflow and the queue is unchanged."""
        queue = one_host(max_queue=2)
        occupy(queue)
        queue.submit("a", "normal", 0.0)
        queue.submit("a", "normal", 0.0)
        before = state(queue)
        with pytest.raises(Overflow) as caught:
            queue.submit("b", "normal", 0.0)
        assert (caught.value.depth, caught.value.wait_estimate_s) == (2, 3.0)
        assert before == state(queue)

    def test_free_lane_admits_even_with_zero_max_queue(self) -> None:
        """max_queue bounds waiting, not running: a free lane still takes a request."""
        queue = one_host(2, max_queue=0)
        queue.submit("a", "normal", 0.0)
        assert len(queue.admit(0.0)) == 1
        queue.submit("a", "normal", 0.0)
        with pytest.raises(Overflow):
            queue.submit("a", "normal", 0.0)

    def test_only_healthy_free_lanes_count(self) -> None:
        """A free lane on an unhealthy host does not let a request past max_queue."""
        queue = make(Host("x", 1), Host("y", 1), max_queue=0)
        queue.set_health("y", False)
        queue.submit("c", "normal", 0.0)
        queue.admit(0.0)
        with pytest.raises(Overflow):
            queue.submit("c", "normal", 0.0)

    def test_wait_estimate_follows_measured_hold_time(self) -> None:
        """The estimate scales with the measured lane-hold time and the queue depth."""
        queue = one_host(2)
        for _ in range(2):
            queue.submit("a", "normal", 0.0)
        for ticket in queue.admit(0.0):
            queue.finish(ticket, 4.0)
        occupy(queue, 4.0)
        for _ in range(3):
            queue.submit("a", "normal", 4.0)
        assert pytest.approx(8.0) == queue.wait_estimate_s()  # (3 + 1) / 2 lanes x 4 s

    def test_wait_estimate_counts_healthy_lanes(self) -> None:
        """Lanes of unhealthy hosts do not shorten the estimate, unless none is healthy."""
        queue = make(Host("x", 1), Host("y", 3))
        queue.set_health("y", False)
        assert queue.wait_estimate_s() == 1.0  # (0 + 1) / 1 lane x 1 s assumed
        queue.set_health("x", False)
        assert queue.wait_estimate_s() == 0.25

    def test_drain_cancels_every_queued_ticket(self) -> None:
        """drain() returns the queued tickets in submission order and leaves none behind."""
        queue = one_host()
        (holder,) = occupy(queue)
        waiting = [queue.submit(c, p, 0.0) for c, p in (("a", "batch"), ("b", "interactive"))]
        assert waiting == queue.drain()
        assert all(t.state is TicketState.CANCELLED for t in waiting)
        assert ((queue.depth, queue.busy), queue.snapshot().by_client) == ((0, 1), {})
        queue.finish(holder, 1.0)
        assert queue.admit(1.0) == []


class TestRule13LaneNumbering:
    """Rule 13: a model's lanes numbered per host from 0; the lowest free one first."""

    def test_lowest_free_lane_first(self) -> None:
        """Admission takes the lowest free lane number, so a freed lane is reused."""
        queue = one_host(3)
        for _ in range(3):
            queue.submit("a", "normal", 0.0)
        first, second, third = queue.admit(0.0)
        assert [first.lane, second.lane, third.lane] == [0, 1, 2]
        queue.finish(second, 1.0)
        queue.submit("b", "normal", 1.0)
        (again,) = queue.admit(1.0)
        assert again.lane == 1

    def test_numbers_are_per_model_on_each_host(self) -> None:
        """Each model's lanes on a host are numbered from 0, apart from other models'."""
        queue = make(Host("x", 4), Host("y", 1))
        for model in (A, A, B, A):
            queue.submit("c", "normal", 0.0, model=model)
        got = [(t.upstream, t.model, t.lane or 0) for t in queue.admit(0.0)]
        a_on_x = sorted(n for host, m, n in got if host == "x" and m == A)
        assert a_on_x == list(range(len(a_on_x)))
        assert all(n == 0 for host, m, n in got if host == "y" or m == B)


class TestRule14Health:
    """Rule 14: an unhealthy host gets no new ticket; its running tickets finish."""

    def test_unhealthy_hosts_get_nothing_until_healthy(self) -> None:
        """With both hosts down nothing binds; the host that comes back takes the ticket."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.set_health("x", False)
        queue.set_health("y", False)
        queue.submit("c", "normal", 0.0, model=A)
        assert queue.admit(0.0) == []
        queue.set_health("y", True)
        assert [t.upstream for t in queue.admit(1.0)] == ["y"]

    def test_a_running_ticket_finishes_on_an_unhealthy_host(self) -> None:
        """A ticket bound before the host went down gives its lane back as usual."""
        queue = make(Host("x", 1))
        ticket = queue.submit("c", "normal", 0.0)
        queue.admit(0.0)
        queue.set_health("x", False)
        queue.finish(ticket, 1.0)
        assert (queue.busy, ticket.state) == (0, TicketState.FINISHED)


def _host_row(queue: LaneQueue, name: str) -> HostSnapshot:
    return next(h for h in queue.snapshot().hosts if h.name == name)


class TestRule15Snapshot:
    """Rule 15: counters, and per host the queued work it may serve and could start now."""

    def test_counts_are_incremental(self) -> None:
        """depth, by_class, by_client and the oldest wait follow every call."""
        queue = one_host()
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

    def test_a_host_without_the_model_sees_no_work(self) -> None:
        """With the model only on x, y's free lane is not idling beside a queue."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.observe_host("x", installed=[A])
        queue.observe_host("y", installed=[B])
        for _ in range(3):
            queue.submit("c", "normal", 0.0, model=A)
        queue.admit(0.0)
        assert tuple(counts(h) for h in queue.snapshot().hosts) == (
            ("x", 1, 1, True, 2, 0),
            ("y", 1, 0, True, 0, 0),
        )

    def test_a_model_limit_leaves_nothing_runnable(self) -> None:
        """A free lane the queued model may not use is eligible work, but nothing runnable."""
        queue = make(Host("x", 2, overrides={A: 1}))
        for _ in range(3):
            queue.submit("c", "normal", 0.0, model=A)
        queue.admit(0.0)
        assert tuple(counts(h) for h in queue.snapshot().hosts) == (("x", 2, 1, True, 2, 0),)

    def test_runnable_before_admit(self) -> None:
        """Queued work next to free lanes is runnable until admit() binds it."""
        queue = make(Host("x", 2, overrides={A: 1}))
        for model in (A, A, B):
            queue.submit("c", "normal", 0.0, model=model)
        assert counts(_host_row(queue, "x")) == ("x", 2, 0, True, 3, 2)

    def test_avoided_hosts_do_not_count_the_ticket(self) -> None:
        """A ticket that avoids a host is not that host's work."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.submit("c", "normal", 0.0, model=A, avoid=["x"])
        queue.submit("c", "normal", 0.0, model=A)
        assert (_host_row(queue, "x").eligible, _host_row(queue, "y").eligible) == (1, 2)

    def test_an_unhealthy_host_has_no_work(self) -> None:
        """An unhealthy host is shown with nothing eligible."""
        queue = make(Host("x", 1), Host("y", 1))
        queue.set_health("x", False)
        queue.submit("c", "normal", 0.0)
        assert counts(_host_row(queue, "x")) == ("x", 1, 0, False, 0, 0)

    @pytest.mark.parametrize("seed", range(6))
    def test_nothing_runnable_after_admit(self, seed: int) -> None:
        """Over random hosts, models, limits, avoid sets and health, after admit() no host can
        start a ticket it may serve, and eligible/runnable match their definitions."""
        rng = random.Random(seed)
        models = ["m0", "m1", "m2", "nowhere"]
        hosts = []
        for i in range(rng.randint(2, 4)):
            caps = {m: rng.randint(1, 2) for m in models[:3] if rng.random() < 0.3}
            hosts.append(
                Host(f"h{i}", rng.randint(1, 3), max_loaded=rng.randint(1, 2), overrides=caps)
            )
        queue = make(*hosts, affinity=rng.choice([0.0, 1.0]))
        names = [h.name for h in hosts]
        queued: dict[int, Ticket] = {}
        running: list[Ticket] = []
        for step in range(400):
            now = step * 0.1
            roll = rng.random()
            if roll < 0.45:
                avoid = rng.sample(names, 1) if rng.random() < 0.2 else []
                ticket = queue.submit(
                    f"c{rng.randrange(4)}",
                    rng.choice(["interactive", "normal", "batch"]),
                    now,
                    model=rng.choice(models),
                    avoid=avoid,
                )
                queued[ticket.id] = ticket
            elif roll < 0.55 and queued:
                queue.cancel(queued.pop(rng.choice(sorted(queued))))
            elif roll < 0.62:
                queue.set_health(rng.choice(names), rng.random() < 0.7)
            elif roll < 0.7:
                installed = None if rng.random() < 0.2 else rng.sample(models[:3], 2)
                loaded = rng.sample(models, rng.randint(0, 2))
                queue.observe_host(rng.choice(names), loaded=loaded, installed=installed)
            elif running:
                queue.finish(running.pop(rng.randrange(len(running))), now)
            for ticket in queue.admit(now):
                del queued[ticket.id]
                running.append(ticket)
            for row, host in zip(queue.snapshot().hosts, queue.hosts, strict=True):
                work = [t for t in queued.values() if may_serve(host, t, queue.hosts)]
                assert (len(work), 0) == (row.eligible, row.runnable), (step, row)
                assert startable(host, work) == 0


class TestRule16Cost:
    """Rule 16: bounded work per call, whatever the depth."""

    def test_ten_thousand_queued_over_hosts_and_models(self) -> None:
        """10,000 tickets over 3 hosts and 6 models flow through; the ring steps over at most
        one tombstone per ticket, so its work per admission is O(1) amortised."""
        hosts = [Host(f"h{i}", 4, max_loaded=2) for i in range(3)]
        queue = make(*hosts, affinity=1.0, max_queue=20_000)
        models = [f"m{i}:latest" for i in range(6)]
        for i in range(10_000):
            queue.submit(f"c{i % 100}", "normal", i * 1e-4, model=models[i % 6])
        served, now = 0, 2.0
        running = queue.admit(now)
        while running:
            now += 0.01
            for ticket in running:
                queue.finish(ticket, now)
                served += 1
            running = queue.admit(now)
        assert (served, queue.depth, queue.busy) == (10_000, 0, 0)
        assert queue.ring.skipped <= served

    def test_cancelled_tickets_are_stepped_over_once(self) -> None:
        """Every other ticket of 100 clients cancelled: each tombstone is stepped over at most
        once."""
        queue = one_host(4)
        tickets = [queue.submit(f"c{i % 100}", "normal", i * 1e-4) for i in range(10_000)]
        for i, ticket in enumerate(tickets):
            if i // 100 % 2:  # every client's tickets of the odd rounds
                queue.cancel(ticket)
        served = 0
        running = queue.admit(2.0)
        while running:
            for ticket in running:
                queue.finish(ticket, 2.0)
                served += 1
            running = queue.admit(2.0)
        assert served == 5_000
        assert 0 < queue.ring.skipped <= 5_000
        assert (queue.depth, queue.busy) == (0, 0)


def auto(name: str = "x", *, parallel: int | None = 4, max_loaded: int = 3) -> Host:
    """A host in auto mode whose NUM_PARALLEL was read as `parallel` (None: unreadable)."""
    seen = Parallel(parallel, "ollama-env") if parallel else Parallel.unknown("unreadable")
    return Host(name, None, max_loaded=max_loaded, parallel=seen)


def fill(queue: LaneQueue, model: str, count: int) -> list[Ticket]:
    """Submit `count` tickets for `model` and admit what fits."""
    for _ in range(count):
        queue.submit("c", "normal", 0.0, model=model)
    return queue.admit(0.0)


class TestRule6LaneMap:
    """Rule 6, auto: each model's lanes from the lane map; at most max_loaded models run."""

    def test_a_chat_model_runs_num_parallel(self) -> None:
        """With NUM_PARALLEL 4 and the model's facts known, four run and the fifth waits."""
        queue = make(auto())
        queue.observe_model("x", A, capabilities=("completion",), architecture="llama")
        assert len(fill(queue, A, 5)) == 4
        assert queue.depth == 1

    def test_an_embedding_model_runs_one(self) -> None:
        """An embedding model gets one lane whatever NUM_PARALLEL says."""
        queue = make(auto())
        queue.observe_model("x", A, capabilities=("embedding",), architecture="bert")
        assert len(fill(queue, A, 3)) == 1

    def test_a_one_lane_architecture_runs_one(self) -> None:
        """A qwen3vl model gets one lane."""
        queue = make(auto())
        queue.observe_model("x", A, capabilities=("completion", "vision"), architecture="qwen3vl")
        assert len(fill(queue, A, 3)) == 1

    def test_a_model_not_looked_up_yet_is_never_over_admitted(self) -> None:
        """Until /api/show answers, a model runs one at a time; then it gets its lanes."""
        queue = make(auto())
        held = fill(queue, A, 3)
        assert len(held) == 1
        queue.observe_model("x", A, capabilities=("completion",), architecture="llama")
        assert len(queue.admit(1.0)) == 2

    def test_models_add_up_until_max_loaded_models_run(self) -> None:
        """Each model has its own lanes; a model beyond max_loaded running ones waits."""
        queue = make(auto(max_loaded=2))
        for model in (A, B, "c:latest"):
            queue.observe_model("x", model, capabilities=("completion",), architecture="llama")
        got = fill(queue, A, 4) + fill(queue, B, 4) + fill(queue, "c:latest", 1)
        expected = [(m, n) for m in (A, B) for n in range(4)]
        assert sorted((t.model, t.lane) for t in got) == expected
        assert (queue.busy, queue.lanes, queue.depth) == (8, 8, 1)

    def test_a_new_num_parallel_applies_to_new_tickets_only(self) -> None:
        """NUM_PARALLEL read as 2 after 4: running tickets keep their lanes, no new one starts
        until the model is under 2."""
        queue = make(auto())
        queue.observe_model("x", A, capabilities=("completion",), architecture="llama")
        held = fill(queue, A, 5)
        queue.observe_parallel("x", Parallel(2, "ollama-env"))
        for ticket in held[:2]:
            queue.finish(ticket, 1.0)
        assert (queue.busy, queue.admit(1.0)) == (2, [])
        queue.finish(held[2], 2.0)
        assert len(queue.admit(2.0)) == 1

    def test_a_hand_set_cap_is_what_the_user_said(self) -> None:
        """lanes set by hand: the host's lanes are shared by its models and the rules are not
        applied (as before the lane map); model_lanes still limits a model."""
        queue = make(Host("x", 4, overrides={B: 1}))
        queue.observe_model("x", A, capabilities=("embedding",), architecture="bert")
        assert len(fill(queue, A, 3)) == 3
        assert len(fill(queue, B, 3)) == 1
        row = next(m for m in queue.snapshot().hosts[0].models if m.name == A)
        assert (row.lanes, row.source, row.ollama_lanes, row.ollama_source) == (
            4,
            "config",
            1,
            "rule:embedding",
        )

    def test_configure_host_switches_between_cap_and_auto(self) -> None:
        """A reloaded config moves a host from a cap to auto: the map decides from then on."""
        queue = make(Host("x", 4, parallel=Parallel(2, "ollama-env")))
        queue.observe_model("x", A, capabilities=("completion",), architecture="llama")
        queue.configure_host("x", cap=None, overrides={})
        assert len(fill(queue, A, 4)) == 2
        with pytest.raises(SchedulerError):
            queue.configure_host("x", cap=0, overrides={})
