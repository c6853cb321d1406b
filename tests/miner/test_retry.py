"""Backoff schedule and Retry-After parsing."""

from __future__ import annotations

import datetime as dt

import pytest

from miner.retry import RetryPolicy, parse_retry_after


class TestRetryPolicy:
    def test_exponential_with_jitter_bounds(self) -> None:
        """Retry n waits between half and all of base * 2**n, capped at max."""
        policy = RetryPolicy(attempts=10, base_s=1.0, max_s=8.0, budget_s=1000)
        lows = [policy.delay(n, waited_s=0, retry_after_s=None, rand=0.0) for n in range(5)]
        highs = [policy.delay(n, waited_s=0, retry_after_s=None, rand=0.999) for n in range(5)]
        assert lows == [0.5, 1.0, 2.0, 4.0, 4.0]
        assert all(
            h is not None and 0.99 * c <= h <= c
            for h, c in zip(highs, [1, 2, 4, 8, 8], strict=True)
        )

    def test_retry_after_is_honoured(self) -> None:
        """A Retry-After value replaces the schedule (plus a little jitter)."""
        policy = RetryPolicy(base_s=0.5)
        assert policy.delay(0, waited_s=0, retry_after_s=7.0, rand=0.0) == 7.0
        assert policy.delay(0, waited_s=0, retry_after_s=7.0, rand=0.5) == 7.25

    def test_attempts_exhausted(self) -> None:
        """No delay (give up) once the retry count is used up."""
        assert RetryPolicy(attempts=2).delay(2, waited_s=0, retry_after_s=None, rand=0) is None

    def test_budget_exhausted(self) -> None:
        """No retry when the wait would pass the total backoff budget."""
        policy = RetryPolicy(attempts=100, budget_s=10)
        assert policy.delay(0, waited_s=9.9, retry_after_s=1.0, rand=0) is None
        assert policy.delay(0, waited_s=8.0, retry_after_s=1.0, rand=0) == 1.0

    @pytest.mark.parametrize(
        ("status", "retry"),
        [(502, True), (503, True), (504, True), (500, False), (400, False), (404, False)],
    )
    def test_retryable_statuses(self, status: int, retry: bool) -> None:
        """Only 502, 503 and 504 are retried."""
        assert retry == RetryPolicy.retryable_status(status)


class TestParseRetryAfter:
    def test_seconds(self) -> None:
        """Delta-seconds, integer or decimal."""
        assert (parse_retry_after("3"), parse_retry_after("1.5")) == (3.0, 1.5)

    def test_http_date(self) -> None:
        """An HTTP-date gives the seconds until then."""
        now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
        assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0

    @pytest.mark.parametrize("value", [None, "", "soon", "-1", "nan"])
    def test_bad_values(self, value: str | None) -> None:
        """Absent or unusable values give None."""
        assert parse_retry_after(value) is None
