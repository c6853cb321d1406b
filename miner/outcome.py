"""What happened to one segment: status, items, error, raw reply and Ollama's metrics (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from miner.metrics import CallMetrics
from miner.segments import Segment

__all__ = ["DONE_STATUSES", "STATUSES", "Outcome", "Status", "total_metrics"]

Status = Literal["ok", "repaired", "fallback", "failed"]
STATUSES: tuple[Status, ...] = ("ok", "repaired", "fallback", "failed")
DONE_STATUSES: tuple[Status, ...] = ("ok", "repaired", "fallback")


def _add(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else a + b


def total_metrics(calls: list[CallMetrics]) -> CallMetrics:
    """Counts and durations summed over calls; `done_reason` of the last call."""
    total = CallMetrics()
    for m in calls:
        total = CallMetrics(
            prompt_eval_count=_add(total.prompt_eval_count, m.prompt_eval_count),
            prompt_eval_duration=_add(total.prompt_eval_duration, m.prompt_eval_duration),
            eval_count=_add(total.eval_count, m.eval_count),
            eval_duration=_add(total.eval_duration, m.eval_duration),
            load_duration=_add(total.load_duration, m.load_duration),
            total_duration=_add(total.total_duration, m.total_duration),
            done_reason=m.done_reason,
        )
    return total


@dataclass(frozen=True, slots=True)
class Outcome:
    """One segment's result. `failed` carries an error (and the raw reply, if any), never items."""

    segment: Segment
    status: Status
    model: str
    prompt_version: str
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None
    raw_reply: str | None = None
    notes: list[str] = field(default_factory=list)
    calls: list[CallMetrics] = field(default_factory=list)
    retries: int = 0
    truncated: bool = False
    length_stop: bool = False
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        if self.status == "failed" and (not self.error or any(self.items.values())):
            raise ValueError("a failed outcome needs an error and holds no items")

    @property
    def metrics(self) -> CallMetrics:
        """Metrics summed over this segment's calls."""
        return total_metrics(self.calls)

    @property
    def item_count(self) -> int:
        """Items extracted."""
        return sum(len(v) for v in self.items.values())
