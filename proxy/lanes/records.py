"""The one queue's two errors: an illegal call, and a full queue."""

from __future__ import annotations

__all__ = ["Overflow", "SchedulerError"]


class SchedulerError(Exception):
    """An illegal call; the queue's state is unchanged (rule 2)."""


class Overflow(Exception):
    """No lane is free and `max_queue` tickets already wait (rule 12)."""

    def __init__(self, depth: int, wait_estimate_s: float) -> None:
        super().__init__(f"queue full: {depth} requests waiting")
        self.depth = depth
        self.wait_estimate_s = wait_estimate_s
