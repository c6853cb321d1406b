"""A queued ticket's position: counted without a projection where it can be, always the same."""

from __future__ import annotations

import random

import pytest

from proxy.lanes.placement import Host
from proxy.lanes.queue import Fairness, LaneQueue
from proxy.lanes.ring import CLASSES, Ticket


class TestPosition:
    @pytest.mark.parametrize("policy", ["requests", "tokens"])
    @pytest.mark.parametrize("seed", range(6))
    def test_every_queued_ticket_is_where_the_projection_puts_it(
        self, policy: str, seed: int
    ) -> None:
        """Under random arrivals (one client or several), cancels, aging and admissions,
        position() of every queued ticket equals its place in waiting()."""
        rng = random.Random(seed)
        fairness = Fairness(policy="tokens" if policy == "tokens" else "requests")
        queue = LaneQueue([Host("x", 2)], max_queue=10_000, aging_s=0.7, affinity_wait_s=0.0,
                          fairness=fairness)  # fmt: skip
        clients = 1 if seed % 3 == 0 else 4
        queued: list[Ticket] = []
        running: list[Ticket] = []
        for step in range(160):
            now = step * 0.05
            roll = rng.random()
            if roll < 0.6:
                client = f"c{rng.randrange(clients)}"
                ticket = queue.submit(client, rng.choice(CLASSES), now,
                                      prompt_tokens=rng.randrange(300))  # fmt: skip
                queued.append(ticket)
            elif roll < 0.7 and queued:
                queue.cancel(queued.pop(rng.randrange(len(queued))))
            elif roll < 0.8 and running:
                queue.finish(running.pop(rng.randrange(len(running))), now)
            if rng.random() < 0.2:
                bound = queue.admit(now)
                running.extend(bound)
                queued = [t for t in queued if t not in bound]
            projected = {row.ticket.id: row.position for row in queue.waiting()}
            assert {t.id: queue.position(t) for t in queued} == projected, step

    def test_an_arrival_behind_one_client_is_counted(self) -> None:
        """Behind 10 interactive tickets and 999 of its own client's, a normal arrival is at
        1,010."""
        queue = LaneQueue([Host("x", 1)], max_queue=10_000, aging_s=60.0, affinity_wait_s=0.0)
        for _ in range(10):
            queue.submit("a", "interactive", 0.0)
        tickets = [queue.submit("b", "normal", 0.0) for _ in range(1_000)]
        assert queue.position(tickets[-1]) == 1_010
