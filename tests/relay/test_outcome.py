"""decide(): the one place a request's Outcome is decided, read by the access line and stats."""

from __future__ import annotations

import asyncio

import pytest

from proxy import errors
from proxy.relay.outcome import Exchange, Relayed, decide
from proxy.stats.recorder import Outcome


def _exchange(*, admitted: bool = True, relayed: Relayed | None = None) -> Exchange:
    return Exchange(rid=1, started=0.0, admitted=admitted, relayed=relayed)


class TestDecide:
    def test_a_relay_to_the_end_completes(self) -> None:
        """Status 200 relayed in full is completed, with the bytes sent."""
        got = decide(_exchange(relayed=Relayed(200, 42)), status=200, error=None)
        assert got == Outcome("completed", 200, None, True, 42)

    def test_a_relayed_error_status_is_a_failure(self) -> None:
        """An upstream 500 relayed as it came is failed with reason http_500 (log and stats)."""
        got = decide(_exchange(relayed=Relayed(500, 10)), status=500, error=None)
        assert (got.kind, got.status, got.reason) == ("failed", 500, "http_500")

    def test_an_upstream_error_under_an_early_sse_answer_is_a_failure(self) -> None:
        """An upstream 404 sent as an SSE event after progress comments (the client had a 200)
        is failed with reason http_404, as it would be without progress."""
        got = decide(_exchange(relayed=Relayed(404, 10)), status=200, error=None)
        assert (got.kind, got.status, got.reason) == ("failed", 404, "http_404")

    def test_a_stream_cut_by_the_upstream_is_a_failure(self) -> None:
        """A stream that ended with an upstream error line is failed: upstream_dropped."""
        relayed = Relayed(200, 10, error="upstream ended the stream early")
        got = decide(_exchange(relayed=relayed), status=200, error=None)
        assert (got.kind, got.status, got.reason) == ("failed", 200, "upstream_dropped")

    def test_a_client_that_left_mid_stream_is_cancelled(self) -> None:
        """A write that found the client gone is cancelled, logged as 499."""
        relayed = Relayed(200, 10, client_gone=True)
        got = decide(_exchange(relayed=relayed), status=200, error=None)
        assert (got.kind, got.status) == ("cancelled", 499)

    @pytest.mark.parametrize("error", [asyncio.CancelledError(), ConnectionResetError()])
    def test_a_client_that_left_while_waiting_is_cancelled(self, error: BaseException) -> None:
        """Cancellation or a reset before any answer is cancelled, 499, never admitted."""
        got = decide(_exchange(admitted=False), status=None, error=error)
        assert got == Outcome("cancelled", 499, None, False, 0)

    @pytest.mark.parametrize(
        "error",
        [
            errors.QueueFull("busy", retry_after_s=1),
            errors.QueueTimeout("late", retry_after_s=1),
            errors.Draining("stop", retry_after_s=1),
        ],
    )
    def test_answers_while_queued_are_rejections(self, error: errors.ProxyError) -> None:
        """A 503 given while waiting for a lane is rejected, with the error's reason."""
        got = decide(_exchange(admitted=False), status=None, error=error)
        assert (got.kind, got.status, got.reason) == ("rejected", 503, error.reason)

    def test_upstream_failures_after_a_lane_are_failures(self) -> None:
        """A 502 after admission is failed with the proxy's reason label."""
        got = decide(_exchange(), status=None, error=errors.UpstreamUnavailable("down"))
        assert (got.kind, got.status, got.reason) == ("failed", 502, "upstream_unavailable")

    def test_an_unexpected_exception_is_an_internal_error(self) -> None:
        """Anything else is failed 500 internal_error."""
        got = decide(_exchange(), status=None, error=RuntimeError("bug"))
        assert (got.kind, got.status, got.reason) == ("failed", 500, "internal_error")
