"""Stats as a pure aggregator: synthetic Recorder events in, a StatsView out."""

from __future__ import annotations

import json

from proxy.stats.ledger import OTHER, Ledger
from proxy.stats.recorder import Outcome, Recorder
from tests.stats.helpers import (
    Clock,
    final_line,
    make_stats,
    ndjson_body,
    relay_chunks,
    run_request,
    snapshot,
    view_of,
)


def _sse(tokens: int, prompt: int, output: int) -> list[bytes]:
    event = (
        b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"x"},'
        b'"finish_reason":null}]}\n\n'
    )
    finish = (
        b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    usage = (
        b'data: {"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":%d,'
        b'"completion_tokens":%d,"total_tokens":%d}}\n\n' % (prompt, output, prompt + output)
    )
    return [event] * tokens + [finish, usage, b"data: [DONE]\n\n"]


class TestCounters:
    def test_the_ledger_is_a_recorder(self) -> None:
        """The Ledger satisfies the Recorder protocol the request path calls."""
        recorder: Recorder = make_stats(Clock())
        assert isinstance(recorder, Ledger)

    def test_each_ending_is_counted_once(self) -> None:
        """Completed, failed, rejected and both cancellations land in their own counters."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(stats, clock, 1, chunks=ndjson_body(3, final_line(prompt=5, output=3)))
        run_request(stats, clock, 2, outcome="failed")
        stats.request_received(
            3, client="b", priority="batch", model="m", route="/api/chat", now=clock()
        )
        stats.request_finished(3, outcome=Outcome("rejected", 503, "queue_full"), now=clock())
        stats.request_received(
            4, client="b", priority="batch", model="m", route="/api/chat", now=clock()
        )
        stats.request_finished(4, outcome=Outcome("cancelled", 499), now=clock())
        stats.request_received(
            5, client="b", priority="batch", model="m", route="/api/chat", now=clock()
        )
        stats.request_admitted(5, host="default", lane=1, options={}, now=clock())
        stats.request_finished(5, outcome=Outcome("cancelled", 499, None, True), now=clock())
        c = view_of(stats).counters
        assert (c.received, c.admitted, c.completed, c.failed) == (5, 3, 1, 1)
        assert (c.rejected, c.cancelled_while_queued, c.cancelled_while_running) == (1, 1, 1)
        assert c.rejected_by_reason == {"queue_full": 1}
        assert c.failed_by_reason == {"failed": 1}
        assert stats.requests == {}
        assert stats.running == {}

    def test_error_status_is_a_failure_but_no_upstream_error(self) -> None:
        """A relayed 404 (decided failed, http_404) counts by its reason, not as upstream error."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(stats, clock, 1, status=404, outcome="failed", reason="http_404")
        c = view_of(stats).counters
        assert (c.completed, c.failed, c.failed_by_reason, c.upstream_errors) == (
            0,
            1,
            {"http_404": 1},
            0,
        )

    def test_upstream_errors(self) -> None:
        """5xx, an error line after a 200, and a failure before any headers are upstream errors."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(stats, clock, 1, status=500)
        error = b'{"error":"an error was encountered while running the model"}\n'
        run_request(stats, clock, 2, chunks=ndjson_body(2, error), outcome="failed")
        stats.request_received(
            3, client="a", priority="normal", model="m", route="/api/chat", now=clock()
        )
        stats.request_admitted(3, host="default", lane=0, options={}, now=clock())
        stats.request_finished(
            3, outcome=Outcome("failed", 502, "upstream_unavailable", True), now=clock()
        )
        assert view_of(stats).counters.upstream_errors == 3

    def test_unknown_ids_and_garbage_never_raise(self) -> None:
        """Events for unknown requests and odd bytes are ignored, not raised."""
        clock = Clock()
        stats = make_stats(clock)
        stats.request_admitted(99, host="default", lane=0, options={}, now=clock())
        stats.chunk_relayed(99, 0, clock())
        stats.request_finished(99, outcome=Outcome("completed", 200, None, True), now=clock())
        run_request(stats, clock, 1, chunks=[b"\xff\xfe not json", b'{"eval_count":"x"}'])
        assert view_of(stats).counters.completed == 1


class TestTokens:
    def test_ndjson_tokens_and_final_counts(self) -> None:
        """Streamed lines count live; the final chunk's counts are the totals."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(stats, clock, 1, chunks=ndjson_body(7, final_line(prompt=40, output=8)))
        t = view_of(stats).tokens
        assert (t.prompt_tokens, t.eval_tokens) == (40, 8)
        assert view_of(stats).models["m"].eval_tokens == 8

    def test_sse_usage(self) -> None:
        """/v1 streams count one token per content event and take totals from `usage`."""
        clock = Clock()
        stats = make_stats(clock)
        stats.request_received(
            1, client="a", priority="normal", model="m", route="/v1/chat/completions", now=clock()
        )
        stats.request_admitted(1, host="default", lane=0, options={}, now=clock())
        relay_chunks(stats, 1, _sse(4, 26, 4)[:4], clock, sse=True)
        assert view_of(stats).lanes.running[0].tokens == 4
        answer = relay_chunks(stats, 1, _sse(4, 26, 4)[4:], clock, sse=True)
        completed = Outcome("completed", 200, None, True)
        stats.request_finished(1, outcome=completed, now=clock(), answer=answer)
        t = view_of(stats).tokens
        assert (t.prompt_tokens, t.eval_tokens) == (26, 4)

    def test_rates(self) -> None:
        """Prefill and decode speeds come from final-chunk durations; output rate from buckets."""
        clock = Clock()
        stats = make_stats(clock)
        final = final_line(prompt=200, output=100, prompt_ms=100.0, eval_ms=1000.0)
        for rid in range(1, 6):
            run_request(stats, clock, rid, run_s=10.0, chunks=ndjson_body(100, final))
        t = view_of(stats).tokens
        assert (t.prefill_tokens_per_s, t.decode_tokens_per_s) == (2000.0, 100.0)
        assert t.output_tokens_per_s_1m == 10.0  # 500 tokens over the 50 s run
        assert t.output_tokens_per_s_5m == 10.0
        clock.advance(600)
        t = view_of(stats).tokens
        assert (t.output_tokens_per_s_1m, t.prefill_tokens_per_s) == (0.0, None)


class TestUtilization:
    def test_saturated_then_idle(self) -> None:
        """Two lanes busy for a minute read near 1; two idle minutes later, 0 over 1 minute."""
        clock = Clock()
        stats = make_stats(clock)
        for rid in (1, 2):
            stats.request_received(
                rid, client="a", priority="normal", model="m", route="/api/chat", now=clock()
            )
            stats.request_admitted(rid, host="default", lane=rid - 1, options={}, now=clock())
        clock.advance(60)
        assert view_of(stats).utilization.busy_ratio_1m > 0.98
        for rid in (1, 2):
            stats.request_finished(rid, outcome=Outcome("completed", 200, None, True), now=clock())
        u = view_of(stats).utilization
        assert u.busy_ratio_1m > 0.98
        assert u.busy_ratio_5m > 0.98
        clock.advance(120)
        u = view_of(stats).utilization
        assert u.busy_ratio_1m == 0.0
        assert 0.3 < u.busy_ratio_5m < 0.36  # 60 busy seconds of 180

    def test_half_busy(self) -> None:
        """One of two lanes busy for long is a ratio near 0.5."""
        clock = Clock()
        stats = make_stats(clock)
        stats.request_received(
            1, client="a", priority="normal", model="m", route="/api/chat", now=clock()
        )
        stats.request_admitted(1, host="default", lane=0, options={}, now=clock())
        clock.advance(400)
        assert abs(view_of(stats).utilization.busy_ratio_5m - 0.5) < 0.01


class TestLatencyAndBreakdowns:
    def test_percentiles(self) -> None:
        """Queue-wait percentiles are nearest-rank over the window, in ms."""
        clock = Clock()
        stats = make_stats(clock)
        for rid in range(1, 101):
            run_request(stats, clock, rid, wait_s=rid / 1000.0, run_s=0.0, first_byte_s=0.0)
        lat = view_of(stats).latency
        assert (lat.queue_wait_ms.p50, lat.queue_wait_ms.p95, lat.queue_wait_ms.p99) == (
            50.0,
            95.0,
            99.0,
        )
        assert lat.queue_wait_ms.samples == 100
        clock.advance(stats.waits.window_s + 1)
        assert view_of(stats).latency.queue_wait_ms.p50 is None

    def test_breakdowns_and_key_cap(self) -> None:
        """Clients beyond the cap share the `(other)` row; mean wait is per key."""
        clock = Clock()
        stats = make_stats(clock, max_keys=3)
        for rid, client in enumerate(["a", "a", "b", "c", "d", "e"], start=1):
            run_request(stats, clock, rid, client=client, wait_s=0.1 * rid)
        view = view_of(stats)
        assert set(view.clients) == {"a", "b", "c", OTHER}
        assert view.clients["a"].requests == 2
        assert view.clients["a"].mean_wait_ms == 150.0
        assert view.clients[OTHER].requests == 2

    def test_memory_stays_bounded(self) -> None:
        """Thousands of requests leave no per-request state and fixed-size windows."""
        clock = Clock()
        stats = make_stats(clock)
        for rid in range(5000):
            run_request(stats, clock, rid, client=f"c{rid}", model=f"m{rid}", run_s=0.01)
        assert stats.requests == {}
        assert len(stats.clients) <= stats.max_keys + 1
        assert len(stats.waits.recent(clock())) <= stats.waits.capacity
        assert len(json.dumps(view_of(stats).model_dump())) < 64_000


class TestQueueAndLanes:
    def test_queue_from_snapshot(self) -> None:
        """Queue depth, classes, top clients and the oldest wait come from the scheduler."""
        clock = Clock()
        stats = make_stats(clock)
        many = {f"c{i:02d}": i for i in range(30)}
        view = view_of(stats, snapshot(depth=435, oldest=clock() - 2.5, by_client=many, busy=2))
        assert view.queue.depth == 435
        assert view.queue.oldest_wait_ms == 2500.0
        assert len(view.queue.by_client) == 20
        assert next(iter(view.queue.by_client)) == "c29"
        assert (view.lanes.configured, view.lanes.busy, view.lanes.free) == (2, 2, 0)

    def test_queue_without_snapshot(self) -> None:
        """Without a scheduler, the queue is counted from the recorder's own events."""
        clock = Clock()
        stats = make_stats(clock)
        stats.request_received(
            1, client="a", priority="batch", model="m", route="/api/chat", now=clock()
        )
        clock.advance(1.5)
        view = view_of(stats)
        assert (view.queue.depth, view.queue.by_class, view.queue.oldest_wait_ms) == (
            1,
            {"batch": 1},
            1500.0,
        )

    def test_lane_rows(self) -> None:
        """A running request shows its lane, who, what, elapsed time and streamed tokens."""
        clock = Clock()
        stats = make_stats(clock)
        stats.request_received(
            7, client="miner", priority="batch", model="qwen", route="/api/chat", now=clock()
        )
        stats.request_admitted(7, host="default", lane=1, options={"num_ctx": 8192}, now=clock())
        clock.advance(2.0)
        relay_chunks(stats, 7, [ndjson_body(3, b"")[0] * 3], clock)
        row = view_of(stats).lanes.running[0]
        assert (row.lane, row.client, row.priority, row.model, row.route) == (
            1,
            "miner",
            "batch",
            "qwen",
            "/api/chat",
        )
        assert (row.elapsed_ms, row.tokens, row.started_at_unix_s) == (2000.0, 3, 1_800_000_000.0)
