"""What the one queue answers besides tickets: its two errors and its snapshot (pure data)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HostSnapshot", "Overflow", "QueueSnapshot", "SchedulerError"]


class SchedulerError(Exception):
    """An illegal call; the queue's state is unchanged (rule 2)."""


class Overflow(Exception):
    """No lane is free and `max_queue` tickets already wait (rule 12)."""

    def __init__(self, depth: int, wait_estimate_s: float) -> None:
        super().__init__(f"queue full: {depth} requests waiting")
        self.depth = depth
        self.wait_estimate_s = wait_estimate_s


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One host's lanes and the queued work it could take (rule 15)."""

    name: str
    lanes: int
    busy: int
    healthy: bool
    eligible: int  # queued tickets this host may serve (rule 10)
    runnable: int  # of those, how many it could start now (free lanes, model limits)


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The queue's counters at one moment; times are the `now` values callers passed."""

    lanes: int
    busy: int
    depth: int
    by_class: dict[str, int]  # queued tickets by the class they asked for
    by_client: dict[str, int]
    oldest_enqueued_at: float | None
    hosts: tuple[HostSnapshot, ...]
