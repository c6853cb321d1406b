"""Builds the frozen `/stats` view from a `Stats` recorder and the scheduler's snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy import __version__
from proxy.stats.schema import (
    Breakdown,
    CountersView,
    LaneRow,
    LanesView,
    LatencyView,
    Percentiles,
    QueueView,
    StatsView,
    TokensView,
    UpstreamView,
    UtilizationView,
)
from proxy.stats.windows import SampleWindow, nearest_rank

if TYPE_CHECKING:
    from proxy.stats.ledger import Stats
    from proxy.stats.records import Keyed, QueueState

__all__ = ["TOP_CLIENTS", "build_view"]

TOP_CLIENTS = 20  # queue.by_client lists the clients with the most waiting requests


def lane_rows(stats: Stats, now: float) -> list[LaneRow]:
    """One row per running request, by lane number."""
    rows = [
        LaneRow(
            lane=req.lane,
            client=req.client,
            priority=req.priority,
            model=req.model,
            route=req.route,
            started_at_unix_s=round((req.admitted_at or now) + stats.wall_offset, 3),
            elapsed_ms=round((now - (req.admitted_at or now)) * 1000.0, 1),
            tokens=req.tally.tokens,
        )
        for req in stats.running.values()
    ]
    return sorted(rows, key=lambda row: row.lane)


def oldest_queued_at(stats: Stats) -> float | None:
    """When the longest-waiting request arrived (a scan; only without a snapshot)."""
    times = [r.received_at for r in stats.requests.values() if r.admitted_at is None]
    return min(times, default=None)


def busy_lane_seconds(stats: Stats, now: float, window_s: float) -> float:
    """Busy lane-seconds inside the buckets' window, including the open span."""
    start = now - stats.buckets.span(now, window_s)
    closed = stats.buckets.total(now, "busy", window_s)
    return closed + stats.busy * max(0.0, now - max(stats.busy_since, start))


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _percentiles(window: SampleWindow, now: float) -> Percentiles:
    values = window.recent(now)
    return Percentiles(
        p50=_ms(nearest_rank(values, 0.50)),
        p95=_ms(nearest_rank(values, 0.95)),
        p99=_ms(nearest_rank(values, 0.99)),
        samples=len(values),
    )


def _breakdown(table: dict[str, Keyed]) -> dict[str, Breakdown]:
    return {
        key: Breakdown(
            requests=row.requests,
            prompt_tokens=row.prompt_tokens,
            eval_tokens=row.eval_tokens,
            mean_wait_ms=_ms(row.wait_sum_s / row.waits * 1000.0) if row.waits else None,
        )
        for key, row in table.items()
    }


def _rate(tokens: float, ns: float) -> float | None:
    return round(tokens / ns * 1e9, 1) if ns > 0 else None


def _queue(stats: Stats, queue: QueueState | None, now: float) -> QueueView:
    if queue is not None:
        depth, oldest = queue.depth, queue.oldest_enqueued_at
        by_class, by_client = dict(queue.by_class), queue.by_client
    else:
        depth, oldest = sum(stats.queued_by_class.values()), oldest_queued_at(stats)
        by_class, by_client = dict(stats.queued_by_class), stats.queued_by_client
    top = sorted(by_client.items(), key=lambda item: (-item[1], item[0]))[:TOP_CLIENTS]
    return QueueView(
        depth=depth,
        max_queue=stats.max_queue,
        by_class=by_class,
        by_client=dict(top),
        oldest_wait_ms=None if oldest is None else _ms(max(0.0, now - oldest) * 1000.0),
    )


def build_view(stats: Stats, queue: QueueState | None, now: float) -> StatsView:
    """Everything `/stats` shows, computed once; reads O(window) state, never history."""
    uptime = max(0.0, now - stats.started_at)
    lanes = queue.lanes if queue is not None else stats.lanes
    busy = queue.busy if queue is not None else len(stats.running)
    buckets = stats.buckets

    def per_second(field: str, window_s: float) -> float:
        span = max(1.0, min(buckets.span(now, window_s), uptime))
        return round(buckets.total(now, field, window_s) / span, 2)

    def busy_ratio(window_s: float) -> float:
        available = lanes * min(buckets.span(now, window_s), uptime)
        if available <= 0:
            return 0.0
        return round(min(1.0, busy_lane_seconds(stats, now, window_s) / available), 3)

    counts = stats.counts
    checked = stats.upstream_checked_at
    return StatsView(
        version=__version__,
        uptime_s=round(uptime, 3),
        lanes=LanesView(
            configured=lanes, busy=busy, free=max(0, lanes - busy), running=lane_rows(stats, now)
        ),
        queue=_queue(stats, queue, now),
        counters=CountersView(
            received=counts["received"],
            admitted=counts["admitted"],
            completed=counts["completed"],
            failed=counts["failed"],
            failed_by_reason=dict(stats.failed_by_reason),
            rejected=counts["rejected"],
            rejected_by_reason=dict(stats.rejected_by_reason),
            cancelled_while_queued=counts["cancelled_while_queued"],
            cancelled_while_running=counts["cancelled_while_running"],
            upstream_errors=counts["upstream_errors"],
        ),
        latency=LatencyView(
            window_s=stats.waits.window_s,
            queue_wait_ms=_percentiles(stats.waits, now),
            first_byte_ms=_percentiles(stats.first_bytes, now),
            total_ms=_percentiles(stats.totals, now),
        ),
        tokens=TokensView(
            prompt_tokens=stats.prompt_tokens,
            eval_tokens=stats.eval_tokens,
            prefill_tokens_per_s=_rate(
                buckets.total(now, "prefill_tokens", 300), buckets.total(now, "prefill_ns", 300)
            ),
            decode_tokens_per_s=_rate(
                buckets.total(now, "decode_tokens", 300), buckets.total(now, "decode_ns", 300)
            ),
            output_tokens_per_s_1m=per_second("output", 60),
            output_tokens_per_s_5m=per_second("output", 300),
        ),
        utilization=UtilizationView(busy_ratio_1m=busy_ratio(60), busy_ratio_5m=busy_ratio(300)),
        clients=_breakdown(stats.clients),
        models=_breakdown(stats.models),
        upstream=UpstreamView(
            url=stats.upstream_url,
            reachable=stats.upstream_reachable,
            version=stats.upstream_version,
            loaded_models=list(stats.loaded_models),
            checked_ago_s=None if checked is None else round(max(0.0, now - checked), 3),
        ),
        warnings=stats.warnings.view(),
    )
