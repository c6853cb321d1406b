"""The feed's frames: SSE framing, and the queue event's summary of /queue (pure)."""

from __future__ import annotations

import json

from proxy.dashboard.frames import QUEUE_ROWS, QueueFeed, event, queue_feed
from proxy.lanes.placement import Host
from proxy.lanes.queue import LaneQueue

ARRIVALS = [  # client, class, submitted at
    ("miner", "batch", 80.0),
    ("miner", "batch", 90.0),
    ("chat", "interactive", 95.0),
    ("notes", "batch", 97.0),
]


def feed(arrivals: list[tuple[str, str, float]]) -> QueueFeed:
    """The queue event of a one-lane queue, its lane held, with `arrivals` waiting at 100 s."""
    queue = LaneQueue([Host("h", 1)], max_queue=10_000, aging_s=1000.0, affinity_wait_s=0.0)
    queue.submit("holder", "normal", 0.0)
    queue.admit(0.0)
    for client, klass, at in arrivals:
        queue.submit(client, klass, at)
    return queue_feed(queue.summary(QUEUE_ROWS), lanes=1, busy=1, policy="tokens", now=100.0)


class TestQueueFeed:
    def test_the_next_client_of_each_class_is_its_first_row(self) -> None:
        """next_in_class names, per class, the client whose request starts first in it."""
        assert feed(ARRIVALS).next_in_class == {"interactive": "chat", "batch": "miner"}

    def test_clients_are_counted_with_their_oldest_wait(self) -> None:
        """Each waiting client: its count, its longest wait and the classes it is next in."""
        clients = {
            c.client: (c.waiting, c.oldest_wait_ms, c.next_in) for c in feed(ARRIVALS).clients
        }
        assert clients == {
            "miner": (2, 20000.0, ["batch"]),
            "chat": (1, 5000.0, ["interactive"]),
            "notes": (1, 3000.0, []),
        }

    def test_clients_are_listed_most_waiting_first(self) -> None:
        """The client with the most waiting requests comes first, then by name."""
        assert [c.client for c in feed(ARRIVALS).clients] == ["miner", "chat", "notes"]

    def test_depth_counts_every_row_but_only_the_first_rows_are_listed(self) -> None:
        """A deep queue: depth is exact, `waiting` holds the first QUEUE_ROWS rows in order."""
        doc = feed([(f"c{i % 3}", "normal", 50.0) for i in range(1, 201)])
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
        doc = feed(ARRIVALS[:1])
        raw = event("queue", doc)
        head, data, end = raw.split(b"\n", 2)
        assert (head, end) == (b"event: queue", b"\n")
        assert doc.model_dump() == json.loads(data.removeprefix(b"data: "))
