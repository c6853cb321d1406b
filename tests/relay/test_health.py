"""Breaker (pure): passive and active health of one upstream host."""

from __future__ import annotations

from proxy.relay.health import Breaker


class TestBreaker:
    def test_opens_after_consecutive_failures_and_closes_after_the_cooldown(self) -> None:
        """Three failures in a row open it for open_s; one failure while half-open reopens it."""
        br = Breaker(failures=3, open_s=10.0)
        br.request_failed(0.0)
        br.request_failed(0.0)
        assert br.healthy(0.0)
        br.request_failed(1.0)
        assert not br.healthy(5.0)
        assert br.healthy(11.0)
        br.request_failed(12.0)  # half-open: one more failure reopens at once
        assert not br.healthy(12.0)
        assert (br.errors, br.trips) == (4, 2)

    def test_a_success_resets_the_count(self) -> None:
        """Failures must be consecutive to open the breaker."""
        br = Breaker(failures=2, open_s=1.0)
        br.request_failed(0.0)
        br.request_succeeded()
        br.request_failed(0.0)
        assert br.healthy(0.0)

    def test_active_check_failure_is_down_until_a_check_passes(self) -> None:
        """A failed health check keeps the host down, however long, until a check passes."""
        br = Breaker()
        br.check(False, 0.0)
        assert not br.healthy(100.0)
        br.check(True, 100.0)
        assert br.healthy(100.0)
