"""BindingQueue (pure): late binding onto several hosts, fairness, affinity, bounded work."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from proxy.binding import BindingQueue, Bound
from proxy.placement import Host
from proxy.scheduler import FairQueue, QueueFull, SchedulerError, Ticket, TicketState
from tests.work import python_lines

A, B = "a:latest", "b:latest"


def make(*hosts: Host, affinity: float = 0.0, max_queue: int = 10_000) -> BindingQueue:
    return BindingQueue(list(hosts), max_queue=max_queue, aging_s=30.0, affinity_wait_s=affinity)


def bound(tickets: list[Ticket]) -> list[Bound]:
    out = []
    for t in tickets:
        assert isinstance(t, Bound)
        out.append(t)
    return out


class TestLateBinding:
    def test_fills_every_host_and_never_more_than_its_lanes(self) -> None:
        q = make(Host("x", 2), Host("y", 3, first_lane=2))
        for i in range(20):
            q.submit(f"c{i % 4}", "normal", 0.0, model=A)
        got = bound(q.admit(1.0))
        assert sorted(t.upstream for t in got) == ["x", "x", "y", "y", "y"]
        assert sorted(t.lane for t in got if t.lane is not None) == [0, 1, 2, 3, 4]
        assert q.admit(1.0) == []
        q.finish(got[0], 2.0)
        (nxt,) = bound(q.admit(2.0))
        assert (nxt.upstream, nxt.lane) == (got[0].upstream, got[0].lane)
        assert q.snapshot().by_upstream == {"x": (2, 2, 14), "y": (3, 3, 14)}

    def test_a_ticket_is_bound_only_when_a_lane_frees(self) -> None:
        q = make(Host("x", 1), Host("y", 1))
        first = bound([q.submit("c", "normal", 0.0, model=A) for _ in range(3)])
        q.admit(0.0)
        assert first[2].upstream == ""
        assert first[2].state is TicketState.QUEUED
        q.finish(first[1], 1.0)
        q.admit(1.0)
        assert first[2].upstream == first[1].upstream

    def test_same_fair_order_as_the_fair_queue_on_one_host(self) -> None:
        rng = random.Random(3)
        fair = FairQueue(2, max_queue=10_000, aging_s=5.0)
        late = BindingQueue([Host("default", 2)], max_queue=10_000, aging_s=5.0, affinity_wait_s=0)
        order_f: list[tuple[str, str]] = []
        order_l: list[tuple[str, str]] = []
        run_f: list[Ticket] = []
        run_l: list[Ticket] = []
        for step in range(400):
            now = step * 0.1
            client = f"c{rng.randrange(5)}"
            prio = rng.choice(["interactive", "normal", "batch"])
            fair.submit(client, prio, now)
            late.submit(client, prio, now, model=A)
            if step % 2 and run_f:
                fair.finish(run_f.pop(0), now)
                late.finish(run_l.pop(0), now)
            for t in fair.admit(now):
                run_f.append(t)
                order_f.append((t.client, t.priority))
            for t in late.admit(now):
                run_l.append(t)
                order_l.append((t.client, t.priority))
        assert order_l == order_f

    def test_warm_first_then_round_robin(self) -> None:
        x, y = Host("x", 2), Host("y", 2, first_lane=2)
        y.observe_loaded([B])
        q = make(x, y)
        q.submit("c", "normal", 0.0, model=B)
        q.submit("c", "normal", 0.0, model=B)
        got = bound(q.admit(0.0))
        assert [t.upstream for t in got] == ["y", "y"]  # warm on y while y has a free lane
        q.submit("c", "normal", 0.0, model=B)
        assert [t.upstream for t in bound(q.admit(0.0))] == ["x"]

    def test_a_blocked_head_does_not_idle_other_hosts(self) -> None:
        x, y = Host("x", 1), Host("y", 1, first_lane=1)
        x.installed, y.installed = frozenset({A}), frozenset({B})
        q = make(x, y)
        q.submit("c1", "normal", 0.0, model=A)
        q.submit("c2", "normal", 0.0, model=A)  # only x has A; x will be full
        q.submit("c3", "normal", 0.0, model=B)
        got = bound(q.admit(0.0))
        assert sorted((t.client, t.upstream) for t in got) == [("c1", "x"), ("c3", "y")]
        assert q.depth == 1

    def test_avoid_keeps_a_retry_off_the_failed_host(self) -> None:
        q = make(Host("x", 2), Host("y", 2, first_lane=2))
        t = q.submit("c", "normal", 0.0, model=A, avoid=["x"])
        assert bound(q.admit(0.0)) == [t]
        assert t.upstream == "y"

    def test_unhealthy_hosts_get_nothing_until_healthy(self) -> None:
        q = make(Host("x", 1), Host("y", 1, first_lane=1))
        q.set_health("x", False)
        q.set_health("y", False)
        q.submit("c", "normal", 0.0, model=A)
        assert q.admit(0.0) == []
        q.set_health("y", True)
        assert [t.upstream for t in q.admit(1.0)] == ["y"]

    def test_queue_full_counts_free_healthy_lanes(self) -> None:
        q = make(Host("x", 1), max_queue=1)
        q.submit("c", "normal", 0.0, model=A)  # a free lane: always accepted
        with pytest.raises(QueueFull):
            q.submit("c", "normal", 0.0, model=A)

    def test_cancel_and_drain(self) -> None:
        q = make(Host("x", 1))
        t1, t2, t3 = (q.submit("c", "normal", 0.0, model=m) for m in (A, B, A))
        q.cancel(t2)
        with pytest.raises(SchedulerError):
            q.cancel(t2)
        assert [t.id for t in q.drain()] == [t1.id, t3.id]
        assert (q.depth, q.snapshot().by_client) == (0, {})

    def test_bad_arguments(self) -> None:
        with pytest.raises(SchedulerError):
            BindingQueue([], max_queue=1, aging_s=1.0, affinity_wait_s=0.0)
        with pytest.raises(SchedulerError):
            BindingQueue([Host("x", 1), Host("x", 1)], max_queue=1, aging_s=1.0, affinity_wait_s=0)
        with pytest.raises(SchedulerError):
            make(Host("x", 1)).submit("c", "urgent", 0.0)


class TestAffinity:
    @staticmethod
    def _run(affinity: float, n: int = 40) -> int:
        """Interleaved A, B on a host that holds one model; returns the swaps."""
        host = Host("x", 2, max_loaded=1)
        q = make(host, affinity=affinity)
        for i in range(n):
            q.submit("c", "normal", 0.0, model=A if i % 2 else B)
        now, running = 0.0, bound(q.admit(0.0))
        while running:
            now += 0.5
            q.finish(running.pop(0), now)
            running += bound(q.admit(now))
        return host.swaps

    def test_swaps_once_per_batch_instead_of_per_request(self) -> None:
        assert self._run(0.0) >= 15
        assert self._run(60.0) <= 1

    def test_the_extra_wait_is_bounded(self) -> None:
        swaps = self._run(2.0, n=40)  # 40 requests, 2 lanes, 0.5 s each: about 10 s of work
        assert 2 <= swaps <= 8

    def test_interleaving_is_fine_while_models_fit(self) -> None:
        host = Host("x", 1, max_loaded=2)
        q = make(host, affinity=60.0)
        for i in range(6):
            q.submit("c", "normal", 0.0, model=A if i % 2 else B)
        order, now = [], 0.0
        running = bound(q.admit(now))
        while running:
            order.append(running[0].model)
            now += 1
            q.finish(running.pop(), now)
            running = bound(q.admit(now))
        assert order == [B, A, B, A, B, A]
        assert host.swaps == 0


class TestCost:
    def test_ten_thousand_queued_over_hosts_and_models(self) -> None:
        """Every dispatch does bounded work: 10,000 tickets flow through with ten times the
        work of 1,000 (lines of Python run, counted, not timed)."""
        small = python_lines(lambda: self._flow(1_000))[1]
        large = python_lines(lambda: self._flow(10_000))[1]
        assert large <= 11 * small  # linear; a scan of the queue per dispatch would be ~100x

    @staticmethod
    def _flow(count: int) -> None:
        hosts = [Host(f"h{i}", 4, first_lane=4 * i, max_loaded=2) for i in range(3)]
        q = make(*hosts, affinity=1.0, max_queue=20_000)
        models = [f"m{i}:latest" for i in range(6)]
        for i in range(count):
            q.submit(f"c{i % 100}", "normal", i * 1e-4, model=models[i % 6])
        served, now = 0, 2.0
        running = q.admit(now)
        while running:
            now += 0.01
            for ticket in running:
                q.finish(ticket, now)
                served += 1
            running = q.admit(now)
        assert served == count


@pytest.mark.parametrize(
    "module", ["binding", "placement", "health", "merge", "pinning", "upstream_specs"]
)
def test_policy_modules_import_no_io(module: str) -> None:
    code = f"import sys, proxy.{module}; print(sorted({{'asyncio', 'aiohttp'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
