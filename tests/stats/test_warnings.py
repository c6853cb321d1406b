"""Ollama-aware warnings from synthetic requests, and the idle-lanes watchdog."""

from __future__ import annotations

from dataclasses import replace

from proxy.lanes.queue import HostSnapshot
from proxy.ollama import LoadedModel
from proxy.stats.ledger import Ledger
from proxy.stats.warnings import HINTS, IdleWatch, changed_options, is_truncated
from tests.stats.helpers import (
    Clock,
    final_line,
    make_stats,
    ndjson_body,
    run_request,
    snapshot,
    view_of,
)


def _kinds(stats: Ledger) -> dict[str, int]:
    view = view_of(stats)
    return {w.kind: w.count for w in view.warnings}


class TestRules:
    def test_truncation_rule(self) -> None:
        """Both Ollama cuts count: exactly num_ctx (old) and num_ctx - (num_ctx - keep)//2."""
        assert is_truncated(4096, 4096)
        assert is_truncated(2050, 4096)
        assert not is_truncated(2000, 4096)
        assert not is_truncated(5000, None)

    def test_changed_options(self) -> None:
        """Only load-time options are compared; a missing one reads `auto`."""
        assert changed_options({"num_ctx": 8192, "temperature": 0}, {"temperature": 1}) == [
            "num_ctx 8192 → auto"
        ]

    def test_idle_watch_needs_persistence(self) -> None:
        """A free lane next to a queue is a bug only if it lasts; it fires once per episode."""
        watch = IdleWatch(grace_s=1.0)
        assert not watch.observe(stuck=True, now=0.0)
        assert not watch.observe(stuck=True, now=0.5)
        assert watch.observe(stuck=True, now=1.2)
        assert not watch.observe(stuck=True, now=3.0)
        assert not watch.observe(stuck=False, now=3.5)
        assert not watch.observe(stuck=True, now=9.0)


class TestFromRequests:
    def test_clean_requests_warn_nothing(self) -> None:
        """Fast, untruncated, same-option requests raise no warning."""
        clock = Clock()
        stats = make_stats(clock)
        for rid in range(1, 6):
            body = ndjson_body(
                5, final_line(prompt=100, output=5, load_ms=900.0 if rid == 1 else 1.0)
            )
            run_request(stats, clock, rid, chunks=body, options={"num_ctx": 4096}, first_byte_s=0.2)
        assert _kinds(stats) == {}

    def test_truncated_by_request_num_ctx(self) -> None:
        """prompt_eval_count at the request's num_ctx is a truncation."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(
            stats, clock, 1, chunks=[final_line(prompt=2048, output=1)], options={"num_ctx": 2048}
        )
        view = view_of(stats)
        assert [(w.kind, w.count, w.hint) for w in view.warnings] == [
            ("prompt_truncated", 1, HINTS["prompt_truncated"])
        ]
        assert "2048" in view.warnings[0].latest

    def test_truncated_by_loaded_context_length(self) -> None:
        """Without num_ctx in the request, /api/ps context_length is the limit."""
        clock = Clock()
        stats = make_stats(clock)
        stats.upstream_polled(
            "default",
            now=clock(),
            reachable=True,
            version="0.33.0",
            loaded=[
                LoadedModel(
                    name="m:latest", context_length=4096, size_vram_bytes=1, expires_at=None
                )
            ],
        )
        run_request(stats, clock, 1, model="m", chunks=[final_line(prompt=2050, output=1)])
        assert _kinds(stats) == {"prompt_truncated": 1}

    def test_reload_names_the_option(self) -> None:
        """A long load on a warm model warns, naming the num_ctx that changed."""
        clock = Clock()
        stats = make_stats(clock, reload_warn_ms=500.0)
        cold = final_line(prompt=10, output=1, load_ms=3000.0)
        run_request(stats, clock, 1, chunks=[cold], options={"num_ctx": 2048})
        assert _kinds(stats) == {}  # the first load is not a reload
        run_request(stats, clock, 2, chunks=[cold], options={"num_ctx": 8192})
        view = view_of(stats)
        assert _kinds(stats) == {"model_reloaded": 1}
        assert "num_ctx 2048 → 8192" in view.warnings[0].latest

    def test_upstream_queueing_streamed(self) -> None:
        """A first byte far beyond load + prefill means Ollama held the request back."""
        clock = Clock()
        stats = make_stats(clock, upstream_queue_warn_ms=500.0)
        body = ndjson_body(3, final_line(prompt=10, output=3, prompt_ms=5.0, eval_ms=30.0))
        run_request(stats, clock, 1, chunks=body, first_byte_s=0.3, run_s=0.4)
        assert _kinds(stats) == {}
        run_request(stats, clock, 2, chunks=body, first_byte_s=1.5, run_s=1.6)
        assert _kinds(stats) == {"upstream_queueing": 1}

    def test_upstream_queueing_not_streamed(self) -> None:
        """Unstreamed: Ollama's total minus load, prefill and decode is its slot wait."""
        clock = Clock()
        stats = make_stats(clock)
        final = final_line(prompt=10, output=3, prompt_ms=5.0, eval_ms=30.0, total_ms=2000.0)
        run_request(stats, clock, 1, chunks=[final], first_byte_s=2.0, run_s=2.0)
        assert _kinds(stats) == {"upstream_queueing": 1}

    def test_idle_lanes_with_queue(self) -> None:
        """The scheduler showing free lanes and waiters for over a second is shouted about."""
        clock = Clock()
        stats = make_stats(clock)
        stats.observe_queue(snapshot(depth=4, busy=0), clock())
        assert view_of(stats).warnings == []
        clock.advance(1.5)
        stats.observe_queue(snapshot(depth=4, busy=0), clock())
        view = view_of(stats)
        assert [(w.kind, w.count) for w in view.warnings] == [("lanes_idle_with_queue", 1)]
        assert view.warnings[0].hint.startswith("A bug in ollama-lanes")
        assert view.warnings[0].latest.startswith("0 of 2 lanes busy while 4 requests")

    def test_pools_are_checked_apart(self) -> None:
        """A free lane of one upstream next to another upstream's queue is no bug."""
        clock = Clock()
        stats = make_stats(clock)
        hosts = (HostSnapshot("a", 1, 0, True, 0, 0), HostSnapshot("b", 1, 1, True, 5, 0))
        state = replace(snapshot(lanes=2, busy=1, depth=5), hosts=hosts)
        stats.observe_queue(state, clock())
        clock.advance(5.0)
        stats.observe_queue(state, clock())
        assert view_of(stats).warnings == []

    def test_reading_the_view_changes_nothing(self) -> None:
        """build_view is pure: reading /stats never raises a warning by itself."""
        clock = Clock()
        stats = make_stats(clock)
        stuck = snapshot(depth=4, busy=0)
        view_of(stats, stuck)
        clock.advance(5.0)
        assert view_of(stats, stuck).warnings == []
