"""Summary statistics for benchmark samples: percentiles, medians, ratios, formatting."""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Sequence

__all__ = [
    "fifo_slots",
    "fmt_ms",
    "fmt_ratio",
    "median",
    "percentile",
    "ratio",
]


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct`-th percentile (0-100) with linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    frac = rank - low
    return ordered[low] + (ordered[high] - ordered[low]) * frac


def median(values: Sequence[float]) -> float:
    """The median, ignoring NaN; NaN when nothing is left."""
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def ratio(numerator: float, denominator: float) -> float:
    """`numerator / denominator`, NaN when the denominator is zero or NaN."""
    if denominator == 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


def fifo_slots(
    timeline: Sequence[Sequence[float]], lanes: int
) -> list[tuple[float, float, float | None]]:
    """Replay a work-conserving FIFO server with `lanes` slots over `[arrived, ended]` rows.

    Requests take, in arrival order, the slot that frees first; each starts at the later of
    its arrival and that slot's free time. Returns (start, end, gap) per request, where gap
    is how long the slot stood idle before it (None for a slot's first request): zero when
    the request was already waiting, the client's or proxy's dispatch delay otherwise.
    """
    free: list[float] = [-math.inf] * lanes
    slots = []
    for arrived, ended in sorted((row[0], row[-1]) for row in timeline):
        freed = heapq.heappop(free)
        start = max(arrived, freed)
        gap = None if freed == -math.inf else start - freed
        slots.append((start, max(start, ended), gap))
        heapq.heappush(free, max(start, ended))
    return slots


def fmt_ms(seconds: float, digits: int = 2) -> str:
    """Seconds as milliseconds text, or an em dash for NaN."""
    if math.isnan(seconds):
        return "—"
    return f"{seconds * 1000:.{digits}f} ms"


def fmt_ratio(value: float) -> str:
    """A ratio as `0.993×`, or an em dash for NaN."""
    return "—" if math.isnan(value) else f"{value:.3f}×"
