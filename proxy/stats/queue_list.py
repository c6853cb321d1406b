"""The `/queue` answer: every waiting request in projected order, with no text (queue rule 17)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from proxy.lanes.projection import Waiting

__all__ = ["QueueList", "WaitingRow", "queue_list"]


class WaitingRow(BaseModel):
    """One waiting request: who, which class, which model, its place and its expected start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int  # the ticket number: stable while it waits
    client: str
    priority: str  # the class it asked for
    klass: str  # the class it is in now (after aging)
    model: str
    position_in_class: int  # 1-based
    position: int  # 1-based, over all classes
    waited_ms: float
    eta_ms: float  # estimated wait until it starts, from the measured lane-hold time


class QueueList(BaseModel):
    """`GET /queue[?client=KEY]`: the waiting requests (of one client, with `client`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    depth: int  # every waiting request, whatever the filter
    lanes: int
    busy: int
    policy: str  # tokens | requests
    waiting: list[WaitingRow]


def queue_list(
    rows: Sequence[Waiting],
    *,
    lanes: int,
    busy: int,
    policy: str,
    now: float,
    client: str | None = None,
) -> QueueList:
    """The `/queue` document for the projected `rows` at monotonic time `now`."""
    return QueueList(
        depth=len(rows),
        lanes=lanes,
        busy=busy,
        policy=policy,
        waiting=[
            WaitingRow(
                id=row.ticket.id,
                client=row.ticket.client,
                priority=row.ticket.priority,
                klass=row.klass,
                model=row.ticket.model,
                position_in_class=row.class_position,
                position=row.position,
                waited_ms=round(max(0.0, now - row.ticket.enqueued_at) * 1000.0, 1),
                eta_ms=round(row.eta_s * 1000.0, 1),
            )
            for row in rows
            if client is None or row.ticket.client == client
        ],
    )
