"""build_view (pure): the frozen `/stats` answer from the ledger, the queue and the hosts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from proxy import __version__
from proxy.lanes.queue import HostSnapshot, QueueSnapshot
from proxy.ollama import LoadedModel
from proxy.stats.ledger import Ledger
from proxy.stats.recent import recent
from proxy.stats.records import HostCounters, Keyed
from proxy.stats.schema import (
    Breakdown,
    ClientBreakdown,
    CountersView,
    LaneRow,
    LanesView,
    LatencyView,
    ModelLanesRow,
    Percentiles,
    PinView,
    QueueView,
    StatsView,
    TokensView,
    UpstreamsRow,
    UpstreamView,
    UtilizationView,
)
from proxy.stats.verdict import judge
from proxy.stats.windows import SampleWindow, nearest_rank

__all__ = ["TOP_CLIENTS", "build_view"]

TOP_CLIENTS = 20  # queue.by_client lists the clients with the most waiting requests


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _ago(now: float, at: float | None) -> float | None:
    return None if at is None else round(max(0.0, now - at), 3)


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


def _clients(ledger: Ledger, queue: QueueSnapshot | None, now: float) -> dict[str, ClientBreakdown]:
    """Per client: its totals, its share of the served tokens of 5 minutes, its counter."""
    counters = queue.counters if queue is not None else {}
    recent = {key: row.served_since(now - 300.0) for key, row in ledger.clients.items()}
    total = sum(recent.values())
    return {
        key: ClientBreakdown(
            **base.model_dump(),
            served_tokens=round(ledger.clients[key].served, 1),
            served_share_5m=round(recent[key] / total, 3) if total > 0 else None,
            service_counter=None if key not in counters else round(counters[key], 1),
        )
        for key, base in _breakdown(ledger.clients).items()
    }


def _rate(tokens: float, ns: float) -> float | None:
    return round(tokens / ns * 1e9, 1) if ns > 0 else None


def lane_rows(ledger: Ledger, now: float) -> list[LaneRow]:
    """One row per running request, by lane number."""
    rows = [
        LaneRow(
            lane=req.lane,
            upstream=req.host,
            client=req.client,
            priority=req.priority,
            model=req.model,
            route=req.route,
            started_at_unix_s=round((req.admitted_at or now) + ledger.wall_offset, 3),
            elapsed_ms=round((now - (req.admitted_at or now)) * 1000.0, 1),
            tokens=req.streamed,
        )
        for req in ledger.running.values()
    ]
    return sorted(rows, key=lambda row: row.lane)


def busy_lane_seconds(ledger: Ledger, now: float, window_s: float) -> float:
    """Busy lane-seconds inside the buckets' window, including the open span."""
    start = now - ledger.buckets.span(now, window_s)
    closed = ledger.buckets.total(now, "busy", window_s)
    return closed + ledger.busy * max(0.0, now - max(ledger.busy_since, start))


def _queue(ledger: Ledger, queue: QueueSnapshot | None, now: float) -> QueueView:
    if queue is not None:
        depth, oldest = queue.depth, queue.oldest_enqueued_at
        by_class, by_client = dict(queue.by_class), dict(queue.by_client)
    else:
        waiting = [r.received_at for r in ledger.requests.values() if r.admitted_at is None]
        depth, oldest = len(waiting), min(waiting, default=None)
        by_class, by_client = dict(ledger.queued_by_class), dict(ledger.queued_by_client)
    top = sorted(by_client.items(), key=lambda item: (-item[1], item[0]))[:TOP_CLIENTS]
    return QueueView(
        depth=depth,
        max_queue=ledger.max_queue,
        by_class=by_class,
        by_client=dict(top),
        oldest_wait_ms=None if oldest is None else _ms(max(0.0, now - oldest) * 1000.0),
    )


def _hosts(
    ledger: Ledger, queue: QueueSnapshot | None, counters: Sequence[HostCounters], now: float
) -> dict[str, UpstreamsRow]:
    lanes: Mapping[str, HostSnapshot] = {h.name: h for h in queue.hosts} if queue else {}
    mine = {c.name: c for c in counters}
    rows = {}
    for name, seen in ledger.hosts.items():
        snap, own = lanes.get(name), mine.get(name)
        rows[name] = UpstreamsRow(
            url=seen.url,
            reachable=seen.reachable,
            version=seen.version,
            checked_ago_s=_ago(now, seen.checked_at),
            loaded_models=list(seen.loaded),
            warm_models=list(own.warm_models) if own else [],
            lanes=snap.lanes if snap else 0,
            busy=snap.busy if snap else 0,
            queued=snap.eligible if snap else 0,
            cap=snap.cap if snap else None,
            num_parallel=snap.parallel.value if snap else None,
            num_parallel_source=snap.parallel.source if snap else "assumed",
            num_parallel_detail=snap.parallel.detail if snap else "",
            models={
                m.name: ModelLanesRow(
                    lanes=m.lanes,
                    source=m.source,
                    busy=m.busy,
                    ollama_lanes=m.ollama_lanes,
                    ollama_source=m.ollama_source,
                )
                for m in (snap.models if snap else ())
            },
            healthy=own.healthy if own else True,
            requests=own.requests if own else 0,
            swaps=own.swaps if own else 0,
            errors=own.errors if own else 0,
        )
    return rows


def _merged_upstream(ledger: Ledger, now: float) -> UpstreamView:
    seen = list(ledger.hosts.values())
    names: set[str] = set()
    loaded: list[LoadedModel] = []
    for host in seen:
        for model in host.loaded:
            if model.name not in names:
                names.add(model.name)
                loaded.append(model)
    checks = [h.checked_at for h in seen if h.checked_at is not None]
    return UpstreamView(
        url=seen[0].url if seen else "",
        reachable=any(h.reachable for h in seen),
        version=next((h.version for h in seen if h.reachable and h.version), None),
        loaded_models=loaded,
        checked_ago_s=_ago(now, max(checks)) if checks else None,
    )


def _counters(ledger: Ledger) -> CountersView:
    counts = ledger.counts
    return CountersView(
        received=counts["received"],
        admitted=counts["admitted"],
        completed=counts["completed"],
        failed=counts["failed"],
        failed_by_reason=dict(ledger.failed_by_reason),
        rejected=counts["rejected"],
        rejected_by_reason=dict(ledger.rejected_by_reason),
        cancelled_while_queued=counts["cancelled_while_queued"],
        cancelled_while_running=counts["cancelled_while_running"],
        client_stalled=counts["client_stalled"],
        upstream_errors=counts["upstream_errors"],
    )


def _uptime(ledger: Ledger, now: float) -> float:
    return max(0.0, now - ledger.started_at)


def _per_second(ledger: Ledger, field: str, window_s: float, now: float) -> float:
    """`field` per second over the window (at most the uptime, at least 1 s)."""
    span = max(1.0, min(ledger.buckets.span(now, window_s), _uptime(ledger, now)))
    return round(ledger.buckets.total(now, field, window_s) / span, 2)


def _busy_ratio(ledger: Ledger, lanes: int, window_s: float, now: float) -> float:
    """Busy lane-seconds over available lane-seconds in the window."""
    available = lanes * min(ledger.buckets.span(now, window_s), _uptime(ledger, now))
    if available <= 0:
        return 0.0
    return round(min(1.0, busy_lane_seconds(ledger, now, window_s) / available), 3)


def build_view(
    ledger: Ledger,
    queue: QueueSnapshot | None,
    now: float,
    *,
    hosts: Sequence[HostCounters] = (),
    pins: Mapping[str, PinView] | None = None,
) -> StatsView:
    """Everything `/stats` shows, computed once; reads O(window) state and changes nothing."""
    uptime = _uptime(ledger, now)
    lanes = queue.lanes if queue is not None else ledger.lanes
    busy = queue.busy if queue is not None else len(ledger.running)
    buckets = ledger.buckets
    verdict, secondary = judge(recent(ledger, queue, now))

    return StatsView(
        version=__version__,
        uptime_s=round(uptime, 3),
        lanes=LanesView(
            configured=lanes, busy=busy, free=max(0, lanes - busy), running=lane_rows(ledger, now)
        ),
        queue=_queue(ledger, queue, now),
        counters=_counters(ledger),
        latency=LatencyView(
            window_s=ledger.waits.window_s,
            queue_wait_ms=_percentiles(ledger.waits, now),
            first_byte_ms=_percentiles(ledger.first_bytes, now),
            total_ms=_percentiles(ledger.totals, now),
        ),
        tokens=TokensView(
            prompt_tokens=ledger.prompt_tokens,
            eval_tokens=ledger.eval_tokens,
            prefill_tokens_per_s=_rate(
                buckets.total(now, "prefill_tokens", 300), buckets.total(now, "prefill_ns", 300)
            ),
            decode_tokens_per_s=_rate(
                buckets.total(now, "decode_tokens", 300), buckets.total(now, "decode_ns", 300)
            ),
            output_tokens_per_s_1m=_per_second(ledger, "output", 60, now),
            output_tokens_per_s_5m=_per_second(ledger, "output", 300, now),
        ),
        utilization=UtilizationView(
            busy_ratio_1m=_busy_ratio(ledger, lanes, 60, now),
            busy_ratio_5m=_busy_ratio(ledger, lanes, 300, now),
        ),
        clients=_clients(ledger, queue, now),
        models=_breakdown(ledger.models),
        upstream=_merged_upstream(ledger, now),
        warnings=ledger.warnings.view(),
        upstreams=_hosts(ledger, queue, hosts, now),
        pins=dict(pins or {}),
        verdict=verdict,
        secondary=secondary,
    )
