"""Retry rules: which failures are retried, and the backoff schedule (pure; randomness injected)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "parse_retry_after"]

# Back-pressure and gateway trouble; anything else (400, 404, 500) is an answer, not a hiccup.
RETRYABLE_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After, bounded by count and total wait.

    Retry `n` (0-based) waits between half and all of `min(max_s, base_s * 2**n)`; a
    Retry-After value replaces that with itself plus up to `base_s` of jitter. A retry whose
    wait would take the call's total backoff past `budget_s` is not made.
    """

    attempts: int = 8
    base_s: float = 0.5
    max_s: float = 30.0
    budget_s: float = 300.0

    def delay(
        self, retry: int, *, waited_s: float, retry_after_s: float | None, rand: float
    ) -> float | None:
        """Seconds to wait before retry number `retry`, or None when retries are exhausted.

        `waited_s` is the backoff already spent on this call; `rand` is uniform in [0, 1)."""
        if retry >= self.attempts:
            return None
        if retry_after_s is not None:
            wait = max(0.0, retry_after_s) + rand * self.base_s
        else:
            cap = min(self.max_s, self.base_s * 2.0**retry)
            wait = cap / 2 + rand * cap / 2
        if waited_s + wait > self.budget_s:
            return None
        return wait

    @staticmethod
    def retryable_status(status: int) -> bool:
        """True for 502, 503 and 504."""
        return status in RETRYABLE_STATUSES


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None if absent or bad."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        current = now or dt.datetime.now(dt.UTC)
        return max(0.0, (when - current).total_seconds())
    return seconds if seconds >= 0 and seconds == seconds else None
