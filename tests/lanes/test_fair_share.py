"""Rule 4 with `tokens` (fair share by served work) and rule 17 (the projected order)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import pytest

from proxy.lanes.placement import Host
from proxy.lanes.queue import Fairness, LaneQueue, SchedulerError
from proxy.lanes.ring import Ticket, TicketState
from proxy.lanes.service import ServiceCounters

EDITOR = (8000, 400)  # prompt tokens, output tokens: 8,800 units at w_in 1, w_out 2
CHAT = (200, 20)  # 240 units: about 1/37 of an editor request


def queue_of(lanes: int = 1, *, aging_s: float = 30.0, **fair: object) -> LaneQueue:
    """One host with `lanes` lanes; `fair` are Fairness fields (tokens policy by default)."""
    fairness = Fairness(forget_s=10 * aging_s, **fair)  # type: ignore[arg-type]
    return LaneQueue(
        [Host("default", lanes)],
        max_queue=10_000,
        aging_s=aging_s,
        affinity_wait_s=0.0,
        fairness=fairness,
    )


@dataclass
class Load:
    """Clients that keep `backlog` tickets queued, each with a fixed request size; a request
    holds its lane one second per 1,000 units of cost (time follows work, as on a GPU), and
    the lanes run side by side."""

    queue: LaneQueue
    sizes: dict[str, tuple[int, int]]
    priority: dict[str, str]
    backlog: int = 3
    now: float = 0.0
    closed: bool = False  # True: `backlog` counts running tickets too (a fixed concurrency)
    running: list[Ticket] = field(default_factory=list)
    ends: dict[int, float] = field(default_factory=dict)  # ticket id -> when it finishes

    def top_up(self, clients: list[str] | None = None) -> None:
        """Queue tickets until each named client has `backlog` waiting (or in flight)."""
        waiting = dict(self.queue.snapshot().by_client)
        if self.closed:
            for ticket in self.running:
                waiting[ticket.client] = waiting.get(ticket.client, 0) + 1
        for client in clients or list(self.sizes):
            for _ in range(self.backlog - waiting.get(client, 0)):
                prompt = self.sizes[client][0]
                self.queue.submit(
                    client, self.priority.get(client, "normal"), self.now, prompt_tokens=prompt
                )

    def serve(self, rounds: int, clients: list[str] | None = None) -> list[str]:
        """Run until `rounds` requests finished, each holding its lane for its cost / 1,000
        seconds and settled from its real counts; returns who finished, in order."""
        served: list[str] = []
        for _ in range(rounds):
            self.top_up(clients)
            for ticket in self.queue.admit(self.now):
                prompt, output = self.sizes[ticket.client]
                self.running.append(ticket)
                self.ends[ticket.id] = self.now + (prompt + 2 * output) / 1000.0
            ticket = min(self.running, key=lambda t: self.ends[t.id])
            self.running.remove(ticket)
            self.now = self.ends.pop(ticket.id)
            prompt, output = self.sizes[ticket.client]
            self.queue.charge(ticket, prompt_tokens=prompt, output_tokens=output, final=True)
            self.queue.finish(ticket, self.now)
            served.append(ticket.client)
        return served


def shares(served: list[str], sizes: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Units served per client (w_in 1, w_out 2)."""
    units: Counter[str] = Counter()
    for client in served:
        prompt, output = sizes[client]
        units[client] += prompt + 2 * output
    return {client: float(n) for client, n in units.items()}


def longest_run(served: list[str], client: str) -> int:
    """The most consecutive admissions `client` had."""
    best = run = 0
    for name in served:
        run = run + 1 if name == client else 0
        best = max(best, run)
    return best


class TestRule4TokenShares:
    """Rule 4 with `tokens`: inside a class, service is shared by cost, not by request count."""

    @pytest.mark.parametrize("lanes", [1, 4])
    def test_twenty_fold_costs_get_equal_shares(self, lanes: int) -> None:
        """Two clients whose requests differ ~37x in cost receive shares within 1.25:1."""
        sizes = {"editor": EDITOR, "chat": CHAT}
        load = Load(queue_of(lanes), sizes, {})
        got = shares(load.serve(3000), sizes)
        assert max(got.values()) / min(got.values()) <= 1.25

    def test_a_fixed_concurrency_on_several_lanes_gets_equal_shares(self) -> None:
        """Each client with 3 requests in flight on 2 lanes: a client whose other requests still
        run is not lifted when its next one waits, so the shares stay within 1.25:1."""
        sizes = {"editor": EDITOR, "chat": CHAT}
        load = Load(queue_of(2), sizes, {}, closed=True)
        got = shares(load.serve(3000), sizes)
        assert max(got.values()) / min(got.values()) <= 1.25

    def test_a_served_class_does_not_age(self) -> None:
        """With the default aging (30 s) the editor's requests wait far longer than aging_s in
        a class that gets lanes all the time: none moves up, so fair share holds."""
        sizes = {"editor": EDITOR, "chat": CHAT}
        load = Load(queue_of(), sizes, {})
        load.serve(2000)
        assert load.now > 300.0
        assert load.queue.ring.sizes()[0] == 0  # nothing reached interactive

    def test_requests_mode_shares_by_count(self) -> None:
        """The control: with `requests` the editor takes ~37x the chat's share."""
        sizes = {"editor": EDITOR, "chat": CHAT}
        load = Load(queue_of(policy="requests"), sizes, {})
        got = shares(load.serve(400), sizes)
        assert got["editor"] / got["chat"] > 30

    def test_a_weight_of_two_gets_twice_the_share(self) -> None:
        """`client_weights` {chat: 2}: the chat client receives about twice the editor's units."""
        sizes = {"editor": EDITOR, "chat": CHAT}
        load = Load(queue_of(weights={"chat": 2.0}), sizes, {})
        got = shares(load.serve(4000), sizes)
        assert 1.8 <= got["chat"] / got["editor"] <= 2.2

    def test_a_returning_client_gets_no_burst(self) -> None:
        """A client idle for a minute comes back level with the others, not with banked credit."""
        sizes = {"a": CHAT, "b": CHAT}
        load = Load(queue_of(), sizes, {}, backlog=10)
        load.serve(50)  # both served equally
        for row in load.queue.waiting():  # then b leaves
            if row.ticket.client == "b":
                load.queue.cancel(row.ticket)
        idle_from = load.now
        load.serve(260, clients=["a"])  # 0.24 s each: a minute of a alone
        assert load.now - idle_from >= 60.0
        served = load.serve(40)
        assert longest_run(served, "b") <= 1
        assert 18 <= served.count("b") <= 22

    def test_a_client_with_a_request_running_is_not_lifted(self) -> None:
        """chat's next request waits while its first still runs: chat is not idle, so it keeps
        its counter (50) instead of being lifted to editor's (8,000), and goes next."""
        queue = queue_of(2)
        queue.submit("chat", "normal", 0.0, prompt_tokens=50)
        queue.submit("editor", "normal", 0.0, prompt_tokens=8000)
        assert len(queue.admit(0.0)) == 2
        queue.submit("editor", "normal", 0.1, prompt_tokens=8000)
        queue.submit("chat", "normal", 0.2, prompt_tokens=50)
        assert queue.service.counter("chat") == 50.0
        assert queue.admit(0.3) == []  # both lanes still busy
        assert [row.ticket.client for row in queue.waiting()] == ["chat", "editor"]

    def test_without_the_lift_the_returning_client_would_burst(self) -> None:
        """The control: the counters the lift evens out differ by a minute of service."""
        service = ServiceCounters(Fairness())
        for client in ("a", "b"):
            service.hold(client)
        service.charge("a", 60 * 240.0)
        service.lift("b", ["a"])
        assert service.counter("b") == service.counter("a")

    def test_interactive_still_beats_batch(self) -> None:
        """An interactive client with a far higher counter still goes before a batch one."""
        sizes = {"vip": EDITOR, "bulk": CHAT}
        priority = {"vip": "interactive", "bulk": "batch"}
        load = Load(queue_of(aging_s=1e9), sizes, priority, backlog=2)  # aging aside
        served = load.serve(20)
        assert served == ["vip"] * 20

    def test_aging_still_moves_a_ticket_up(self) -> None:
        """A batch ticket waiting 2 x aging_s runs even under steady interactive load."""
        sizes = {"vip": EDITOR, "bulk": EDITOR}  # 8.8 s each
        load = Load(queue_of(aging_s=5.0), sizes, {"vip": "interactive", "bulk": "batch"}, 1)
        served = load.serve(20)
        assert "bulk" in served
        assert served.index("bulk") <= 4  # interactive from 10 s on, then level with vip

    def test_ties_go_round_robin(self) -> None:
        """Clients with equal counters and equal costs alternate."""
        sizes = {"a": CHAT, "b": CHAT, "c": CHAT}
        served = Load(queue_of(), sizes, {}).serve(9)
        assert served == ["a", "b", "c"] * 3

    def test_live_output_moves_the_counter(self) -> None:
        """While a ticket runs, each live count raises its client's counter by w_out per token."""
        queue = queue_of()
        queue.submit("a", "normal", 0.0, prompt_tokens=100)
        (ticket,) = queue.admit(0.0)
        assert queue.service.counter("a") == 100.0
        queue.charge(ticket, output_tokens=10)
        assert queue.service.counter("a") == 120.0

    def test_the_answer_settles_the_estimate(self) -> None:
        """Ollama's own counts replace the estimate: the counter moves by the difference."""
        queue = queue_of()
        queue.submit("a", "normal", 0.0, prompt_tokens=1000)
        (ticket,) = queue.admit(0.0)
        queue.charge(ticket, output_tokens=5)
        queue.finish(ticket, 1.0)
        queue.charge(ticket, prompt_tokens=300, output_tokens=7, final=True)
        assert queue.service.counter("a") == 314.0

    def test_a_queued_ticket_cannot_be_charged(self) -> None:
        """Charging work that has not started is a scheduler error and changes nothing."""
        queue = queue_of()
        queue.submit("x", "normal", 0.0)
        (running,) = queue.admit(0.0)
        waiting = queue.submit("a", "normal", 0.0)
        with pytest.raises(SchedulerError):
            queue.charge(waiting, output_tokens=5)
        assert queue.service.counter("a") == 0.0
        assert running.state == TicketState.ADMITTED

    def test_a_weight_must_be_positive(self) -> None:
        """A zero client weight is refused when the fairness is made."""
        with pytest.raises(SchedulerError):
            Fairness(weights={"a": 0.0})


class TestRule4CounterBounds:
    """Rule 4's bounds: counters are rebased and idle clients forgotten."""

    def test_counters_are_rebased_and_order_kept(self) -> None:
        """With a low rebase bound counters stay small, and the shares stay equal."""
        sizes = {"editor": EDITOR, "chat": CHAT}
        load = Load(queue_of(rebase_above=50_000.0), sizes, {})
        got = shares(load.serve(2000), sizes)
        assert max(load.queue.service.counters().values()) <= 50_000.0 + 2 * 8800
        assert max(got.values()) / min(got.values()) <= 1.25

    def test_an_idle_client_is_forgotten_after_ten_aging_periods(self) -> None:
        """A client holding nothing for 10 x aging_s loses its counter; a recent one keeps it."""
        queue = queue_of(aging_s=1.0)
        for client, at in (("old", 0.0), ("new", 5.0)):
            queue.submit(client, "normal", at, prompt_tokens=50)
            (ticket,) = queue.admit(at)
            queue.finish(ticket, at)
        queue.admit(10.5)
        assert queue.service.counters() == {"new": 50.0}

    def test_a_late_settlement_does_not_revive_a_forgotten_client(self) -> None:
        """Settling a ticket of a client already forgotten leaves no counter behind."""
        queue = queue_of(aging_s=1.0)
        queue.submit("a", "normal", 0.0, prompt_tokens=50)
        (ticket,) = queue.admit(0.0)
        queue.finish(ticket, 0.0)
        queue.admit(20.0)
        queue.charge(ticket, prompt_tokens=60, final=True)
        assert queue.service.counters() == {}


class TestRule17Projection:
    """Rule 17: waiting() is the order admit() will follow if nothing else arrives."""

    @pytest.mark.parametrize("policy", ["tokens", "requests"])
    @pytest.mark.parametrize("seed", range(3))
    def test_projection_matches_the_admissions(self, policy: str, seed: int) -> None:
        """Random clients, classes and prompt sizes: the projected order is the real one."""
        rng = random.Random(seed)
        queue = queue_of(policy=policy)
        queue.submit("holder", "normal", 0.0)
        (running,) = queue.admit(0.0)
        for _ in range(60):
            queue.submit(
                f"c{rng.randrange(5)}",
                rng.choice(["interactive", "normal", "batch"]),
                0.0,
                prompt_tokens=rng.randrange(1, 5000),
            )
        projected = [row.ticket.id for row in queue.waiting()]
        admitted: list[int] = []
        while True:
            queue.charge(running, output_tokens=0, final=True)  # as estimated: no output
            queue.finish(running, 1.0)
            got = queue.admit(1.0)
            if not got:
                break
            (running,) = got
            admitted.append(running.id)
        assert projected == admitted

    def test_positions_and_estimates(self) -> None:
        """Positions count per class and overall; the start estimate follows the hold time."""
        queue = queue_of(2)
        for client in ("h1", "h2"):
            queue.submit(client, "normal", 0.0)
        held = queue.admit(0.0)
        for ticket in held:
            queue.finish(ticket, 4.0)  # a lane is held 4 s
        queue.submit("h3", "normal", 4.0)
        queue.submit("h4", "normal", 4.0)
        queue.admit(4.0)
        batch = queue.submit("b", "batch", 4.0)
        first = queue.submit("i", "interactive", 4.0)
        second = queue.submit("n", "normal", 4.0)
        rows = queue.waiting()
        assert [(first, "interactive", 1, 1), (second, "normal", 1, 2), (batch, "batch", 1, 3)] == [
            (r.ticket, r.klass, r.class_position, r.position) for r in rows
        ]
        assert [r.eta_s for r in rows] == [2.0, 4.0, 6.0]  # (ahead + 1) / 2 lanes x 4 s
        assert queue.position(batch) == 3

    def test_an_admitted_ticket_has_no_position(self) -> None:
        """position() is 0 for a ticket that is not waiting."""
        queue = queue_of()
        ticket = queue.submit("a", "normal", 0.0)
        queue.admit(0.0)
        assert queue.position(ticket) == 0

    def test_a_summary_reads_the_head_of_a_deep_queue(self) -> None:
        """summary(limit): the first rows as waiting() has them, the exact depth, the next client
        of each class and every client's count and oldest submission."""
        queue = queue_of()
        queue.submit("holder", "normal", 0.0)
        queue.admit(0.0)
        for i in range(300):
            queue.submit(f"c{i % 3}", "batch" if i % 2 else "normal", float(i))
        summary = queue.summary(10)
        assert [r.ticket.id for r in summary.rows] == [r.ticket.id for r in queue.waiting()[:10]]
        assert summary.depth == 300
        assert summary.next_in_class == {"normal": "c0", "batch": "c1"}
        assert summary.clients == {"c0": (100, 0.0), "c1": (100, 1.0), "c2": (100, 2.0)}
