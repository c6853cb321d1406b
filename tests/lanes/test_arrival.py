"""`submit(at_once=True)`: an arrival bound on the spot is bound exactly as admit() binds it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from proxy.lanes.lanemap import Parallel
from proxy.lanes.placement import Host
from proxy.lanes.queue import Fairness, LaneQueue
from proxy.lanes.ring import CLASSES, Ticket

MODELS = ["m0", "m1", "m2", "nowhere"]


def _hosts(rng: random.Random) -> list[Host]:
    hosts = []
    for i in range(rng.randint(1, 3)):
        caps = {m: rng.randint(1, 2) for m in MODELS[:3] if rng.random() < 0.3}
        cap = rng.choice([None, 1, 2, 3])
        hosts.append(
            Host(
                f"h{i}",
                cap,
                max_loaded=rng.randint(1, 2),
                overrides=caps,
                parallel=Parallel(rng.randint(1, 3), "config"),
            )
        )
    return hosts


def _state(queue: LaneQueue, tickets: dict[int, Ticket]) -> Any:
    """Everything a caller can see of the queue and of the tickets it handed out."""
    return (
        queue.snapshot(),
        [queue.ring.turns(rank) for rank in range(len(CLASSES))],
        queue.service.counters(),
        [(w.ticket.id, w.position, w.eta_s) for w in queue.waiting()],
        [(h.name, list(h.loaded), dict(h.running), h.swaps, h.dispatched) for h in queue.hosts],
        sorted(
            (t.id, t.state, t.upstream, t.lane, t.admitted_at, t.rank, t.entered_at, t.charged)
            for t in tickets.values()
        ),
    )


class TestArrivalAtOnce:
    @pytest.mark.parametrize("seed", range(12))
    def test_same_bindings_as_submit_then_admit(self, seed: int) -> None:
        """Two queues driven by the same random arrivals, finishes, cancels, charges, health
        and model changes, one with at_once arrivals: after every step both show the same
        tickets bound the same way, the same ring, counters, projection and hosts."""
        rng = random.Random(seed)
        setup = rng.getstate()
        fairness = Fairness(policy=rng.choice(["tokens", "requests"]))
        affinity = rng.choice([0.0, 1.0])
        queues: list[LaneQueue] = []
        for _ in range(2):
            rng.setstate(setup)
            hosts = _hosts(rng)
            queues.append(
                LaneQueue(hosts, max_queue=10_000, aging_s=1.0, affinity_wait_s=affinity,
                          fairness=fairness)
            )  # fmt: skip
        plain, at_once = queues
        names = [h.name for h in plain.hosts]
        tickets: list[dict[int, Ticket]] = [{}, {}]
        for step in range(300):
            now = step * 0.1
            roll = rng.random()
            args = (f"c{rng.randrange(4)}", rng.choice(CLASSES), now)
            model = rng.choice(MODELS)
            avoid = rng.sample(names, 1) if rng.random() < 0.15 else []
            prompt = rng.randrange(500)
            running = sorted(i for i, t in tickets[0].items() if t.state.value == "admitted")
            queued = sorted(i for i, t in tickets[0].items() if t.state.value == "queued")
            pick = rng.random()
            health = (rng.choice(names), rng.random() < 0.7)
            loaded = rng.sample(MODELS, rng.randint(0, 2))
            for which, queue in enumerate(queues):
                mine = tickets[which]
                if roll < 0.45:
                    ticket = queue.submit(*args, model=model, avoid=avoid, prompt_tokens=prompt,
                                          at_once=which == 1)  # fmt: skip
                    mine[ticket.id] = ticket
                elif roll < 0.55 and queued:
                    queue.cancel(mine[queued[int(pick * len(queued))]])
                elif roll < 0.62:
                    queue.set_health(*health)
                elif roll < 0.68:
                    queue.observe_host(health[0], loaded=loaded)
                elif roll < 0.75 and running:
                    queue.charge(mine[running[int(pick * len(running))]], output_tokens=prompt)
                elif running:
                    queue.finish(mine[running[int(pick * len(running))]], now)
                queue.admit(now)
            assert _state(plain, tickets[0]) == _state(at_once, tickets[1]), step

    def test_an_arrival_with_a_free_lane_is_bound_on_the_spot(self) -> None:
        """With nothing queued and a lane free, the ticket comes back bound; with a queue
        already waiting it stays queued for admit()."""
        queue = LaneQueue([Host("x", 1)], max_queue=10, aging_s=1.0, affinity_wait_s=0.0)
        first = queue.submit("a", "normal", 0.0, at_once=True)
        second = queue.submit("b", "normal", 0.0, at_once=True)
        assert (first.state.value, first.upstream, first.lane) == ("admitted", "x", 0)
        assert (second.state.value, queue.depth, queue.busy) == ("queued", 1, 1)
