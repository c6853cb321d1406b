"""The feed's frames: SSE framing, and the queue event's summary of /queue (pure)."""

from __future__ import annotations

import json

from proxy.dashboard.frames import QUEUE_ROWS, QueueFeed, event, queue_feed
from proxy.lanes.projection import Waiting
from proxy.lanes.ring import Ticket


def row(rid: int, client: str, klass: str, place: int, position: int, at: float) -> Waiting:
    ticket = Ticket(rid, client, klass, "m:latest", at)
    return Waiting(ticket, klass, place, position, float(position))


ROWS = [
    row(1, "chat", "interactive", 1, 1, 95.0),
    row(2, "miner", "batch", 1, 2, 90.0),
    row(3, "notes", "batch", 2, 3, 97.0),
    row(4, "miner", "batch", 3, 4, 80.0),
]


def feed(rows: list[Waiting]) -> QueueFeed:
    return queue_feed(rows, lanes=2, busy=2, policy="tokens", now=100.0)


class TestQueueFeed:
    def test_the_next_client_of_each_class_is_its_first_row(self) -> None:
        """next_in_class names, per class, the client whose request starts first in it."""
        assert feed(ROWS).next_in_class == {"interactive": "chat", "batch": "miner"}

    def test_clients_are_counted_with_their_oldest_wait(self) -> None:
        """Each waiting client: its count, its longest wait and the classes it is next in."""
        clients = {c.client: (c.waiting, c.oldest_wait_ms, c.next_in) for c in feed(ROWS).clients}
        assert clients == {
            "miner": (2, 20000.0, ["batch"]),
            "chat": (1, 5000.0, ["interactive"]),
            "notes": (1, 3000.0, []),
        }

    def test_clients_are_listed_most_waiting_first(self) -> None:
        """The client with the most waiting requests comes first, then by name."""
        assert [c.client for c in feed(ROWS).clients] == ["miner", "chat", "notes"]

    def test_depth_counts_every_row_but_only_the_first_rows_are_listed(self) -> None:
        """A deep queue: depth is exact, `waiting` holds the first QUEUE_ROWS rows in order."""
        deep = [row(i, f"c{i % 3}", "normal", i, i, 50.0) for i in range(1, 201)]
        doc = feed(deep)
        assert (doc.depth, len(doc.waiting)) == (200, QUEUE_ROWS)
        assert list(range(1, QUEUE_ROWS + 1)) == [r.position for r in doc.waiting]
        assert sum(c.waiting for c in doc.clients) == 200

    def test_an_empty_queue_has_no_next_client(self) -> None:
        """With nothing waiting: depth 0, no next client, no client rows."""
        doc = feed([])
        assert (doc.depth, doc.next_in_class, doc.clients, doc.waiting) == (0, {}, [], [])


class TestEvent:
    def test_an_event_is_a_name_and_one_data_line(self) -> None:
        """`event: <name>`, one `data:` line of JSON, a blank line: what EventSource parses."""
        doc = feed(ROWS[:1])
        raw = event("queue", doc)
        head, data, end = raw.split(b"\n", 2)
        assert (head, end) == (b"event: queue", b"\n")
        assert doc.model_dump() == json.loads(data.removeprefix(b"data: "))
