"""What one feed frame holds: a `stats` event (the `/stats` view) and a `queue` event (the
first rows of `/queue`, with the waiting clients summed up), in Server-Sent Events framing."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from proxy.lanes.projection import QueueSummary
from proxy.stats.queue_list import WaitingRow, queue_list
from proxy.stats.schema import StatsView

__all__ = [
    "CLIENT_ROWS",
    "QUEUE_ROWS",
    "ClientWaiting",
    "QueueFeed",
    "event",
    "frame",
    "queue_feed",
]

QUEUE_ROWS = 50  # rows of /queue in each frame: the next requests to start
CLIENT_ROWS = 64  # waiting clients summed up in each frame, most waiting first


class ClientWaiting(BaseModel):
    """One client with requests waiting: how many, for how long, and where it is next."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client: str
    waiting: int
    oldest_wait_ms: float
    next_in: list[str]  # the classes whose next request to start is this client's


class QueueFeed(BaseModel):
    """The `queue` event: `/queue`'s first rows, the next client per class, every waiting client."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int
    lanes: int
    busy: int
    policy: str
    next_in_class: dict[str, str]  # class -> the client whose request starts next in it
    clients: list[ClientWaiting]
    waiting: list[WaitingRow]  # the first QUEUE_ROWS rows of /queue, in projected order


def _clients(summary: QueueSummary, now: float) -> list[ClientWaiting]:
    nexts: dict[str, list[str]] = {}
    for klass, client in summary.next_in_class.items():
        nexts.setdefault(client, []).append(klass)
    counts = summary.clients
    ranked = sorted(counts, key=lambda key: (-counts[key][0], key))[:CLIENT_ROWS]
    return [
        ClientWaiting(
            client=key,
            waiting=counts[key][0],
            oldest_wait_ms=round(max(0.0, now - counts[key][1]) * 1000.0, 1),
            next_in=nexts.get(key, []),
        )
        for key in ranked
    ]


def queue_feed(
    summary: QueueSummary, *, lanes: int, busy: int, policy: str, now: float
) -> QueueFeed:
    """The `queue` event for the queue's `summary` (its first QUEUE_ROWS rows) at monotonic
    time `now`; O(rows + clients), however deep the queue."""
    first = queue_list(summary.rows[:QUEUE_ROWS], lanes=lanes, busy=busy, policy=policy, now=now)
    return QueueFeed(
        depth=summary.depth,
        lanes=lanes,
        busy=busy,
        policy=policy,
        next_in_class=dict(summary.next_in_class),
        clients=_clients(summary, now),
        waiting=first.waiting,
    )


def event(name: str, document: BaseModel) -> bytes:
    """One SSE event: `event: <name>` and the document as one `data:` line of JSON."""
    return b"event: " + name.encode() + b"\ndata: " + document.model_dump_json().encode() + b"\n\n"


def frame(stats: StatsView, queue: QueueFeed) -> bytes:
    """One frame: the `stats` event, then the `queue` event."""
    return event("stats", stats) + event("queue", queue)
