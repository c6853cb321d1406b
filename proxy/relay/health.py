"""Breaker (pure): health from active checks and a passive circuit breaker; `now` passed in.

- Active: a failed `GET /api/version` marks the host down until a check succeeds.
- Passive: `failures` consecutive request failures (connection errors, 5xx) open the breaker for
  `open_s`; after that the host is tried again, and one more failure opens it again at once.
- A successful request resets the consecutive count.
"""

from __future__ import annotations

__all__ = ["Breaker"]


class Breaker:
    """Health of one host."""

    __slots__ = ("_down", "_failures", "_limit", "_open_s", "_open_until", "errors", "trips")

    def __init__(self, *, failures: int = 3, open_s: float = 10.0) -> None:
        if failures < 1 or open_s <= 0:
            raise ValueError("failures must be >= 1 and open_s > 0")
        self._limit = failures
        self._open_s = open_s
        self._failures = 0
        self._open_until: float | None = None
        self._down = False
        self.errors = 0  # request failures counted since start
        self.trips = 0  # times the breaker opened

    def healthy(self, now: float) -> bool:
        """True if the host may get new requests at `now`."""
        return not self._down and (self._open_until is None or now >= self._open_until)

    def request_failed(self, now: float) -> None:
        """A connection failure or a 5xx answer."""
        self.errors += 1
        self._failures += 1
        if self._failures >= self._limit:
            self._open_until = now + self._open_s
            self._failures = self._limit - 1  # half-open afterwards: one failure reopens
            self.trips += 1

    def request_succeeded(self) -> None:
        """An answer below 500."""
        self._failures = 0

    def check(self, ok: bool, now: float) -> None:
        """The result of an active health check."""
        self._down = not ok
        if ok and self._open_until is not None and now >= self._open_until:
            self._open_until = None
