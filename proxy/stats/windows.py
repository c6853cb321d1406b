"""Bounded sliding windows for statistics: recent samples and per-second buckets."""

from __future__ import annotations

import math

__all__ = ["SampleWindow", "SecondBuckets", "nearest_rank"]


def nearest_rank(ordered: list[float], q: float) -> float | None:
    """The nearest-rank `q`-quantile (0 < q <= 1) of an ascending list; None if empty."""
    if not ordered:
        return None
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


class SampleWindow:
    """The last `capacity` samples, of which those younger than `window_s` count.

    Adding is O(1) (a ring buffer overwrite); reading sorts at most `capacity` values.
    """

    def __init__(self, capacity: int = 2048, window_s: float = 300.0) -> None:
        self.capacity = capacity
        self.window_s = window_s
        self._times: list[float] = [0.0] * capacity
        self._values: list[float] = [0.0] * capacity
        self._next = 0
        self._size = 0

    def add(self, now: float, value: float) -> None:
        """Record `value`, observed at monotonic time `now`."""
        self._times[self._next] = now
        self._values[self._next] = value
        self._next = (self._next + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def recent(self, now: float) -> list[float]:
        """The samples inside the window, ascending."""
        cutoff = now - self.window_s
        size = self._size
        pairs = zip(self._times[:size], self._values[:size], strict=True)
        return sorted(v for t, v in pairs if t >= cutoff)


class SecondBuckets:
    """Sums of a few named fields per second, for the last `seconds` seconds.

    Each slot remembers which second it holds and is reset lazily when reused, so
    adding is O(1); a span spread over seconds costs at most `seconds` steps.
    """

    def __init__(self, fields: tuple[str, ...], seconds: int = 300) -> None:
        self.seconds = seconds
        self._index = {name: i for i, name in enumerate(fields)}
        self._epochs: list[int] = [-1] * seconds
        self._sums: list[list[float]] = [[0.0] * len(fields) for _ in range(seconds)]

    def _slot(self, second: int) -> list[float]:
        i = second % self.seconds
        if self._epochs[i] != second:
            self._epochs[i] = second
            row = self._sums[i]
            for j in range(len(row)):
                row[j] = 0.0
        return self._sums[i]

    def add(self, now: float, field: str, value: float) -> None:
        """Add `value` to `field` in the second that holds `now`."""
        second = math.floor(now)
        i = second % self.seconds
        row = self._sums[i] if self._epochs[i] == second else self._slot(second)
        row[self._index[field]] += value

    def add_span(self, start: float, end: float, field: str, rate: float) -> None:
        """Add `rate` per second of overlap to `field` for every second in [start, end)."""
        start = max(start, end - self.seconds)
        j = self._index[field]
        while start < end:
            second = math.floor(start)
            upto = min(end, second + 1.0)
            self._slot(second)[j] += rate * (upto - start)
            start = upto

    def span(self, now: float, window_s: float) -> float:
        """The seconds that `total(now, _, window_s)` covers: whole seconds plus this one."""
        return min(int(window_s), self.seconds) - 1 + (now - math.floor(now))

    def total(self, now: float, field: str, window_s: float) -> float:
        """The sum of `field` over the seconds in (now - window_s, now]."""
        j = self._index[field]
        newest = math.floor(now)
        oldest = newest - min(int(window_s), self.seconds) + 1
        return sum(
            row[j]
            for epoch, row in zip(self._epochs, self._sums, strict=True)
            if oldest <= epoch <= newest
        )
