"""recent (pure): the ledger's last verdict window as one frozen `Recent` record."""

from __future__ import annotations

import math

from proxy.lanes.queue import QueueSnapshot
from proxy.stats.evidence import LaneFact, Recent
from proxy.stats.ledger import Ledger

__all__ = ["lane_facts", "recent"]


def _held_seconds(
    ledger: Ledger, field: str, level: int, since: float, now: float, window_s: float
) -> float:
    """`field`'s closed spans in the window, plus the open one: `level` since `since`."""
    start = now - ledger.buckets.span(now, window_s)
    closed = ledger.buckets.total(now, field, window_s)
    return closed + level * max(0.0, now - max(since, start))


def lane_facts(
    ledger: Ledger, queue: QueueSnapshot | None, now: float, window_s: float
) -> tuple[LaneFact, ...]:
    """The lane-map rows of the models that took a lane in the window or hold one now."""
    cutoff = now - window_s
    if queue is not None:
        rows = [(h.name, h.cap, m) for h in queue.hosts for m in h.models]
    else:  # the rows the latest queue check saw (no cap: a view built without a queue)
        rows = [(host, None, m) for (host, _), m in sorted(ledger.lane_rows.items())]
    return tuple(
        LaneFact(
            host,
            m.name,
            m.lanes,
            m.source,
            m.ollama_lanes,
            m.ollama_source,
            cap,
            ledger.knees.get(host),
        )
        for host, cap, m in rows
        if m.busy or ledger.taken_at.get((host, m.name), -math.inf) >= cutoff
    )


def recent(ledger: Ledger, queue: QueueSnapshot | None, now: float) -> Recent:
    """The last `ledger.verdict_window_s` (or the uptime, when shorter): O(window) to read."""
    window = ledger.verdict_window_s
    buckets = ledger.buckets
    span = max(0.0, min(buckets.span(now, window), now - ledger.started_at))

    def total(field: str) -> int:
        return round(buckets.total(now, field, window))

    truncations, reloads, queueing = ledger.evidence.window(now - span)
    return Recent(
        window_s=span,
        lanes=queue.lanes if queue is not None else ledger.lanes,
        busy_lane_s=_held_seconds(ledger, "busy", ledger.busy, ledger.busy_since, now, window),
        waiting_s=_held_seconds(
            ledger, "waiting", min(1, ledger.queued), ledger.queued_since, now, window
        ),
        received=total("received"),
        completed=total("completed"),
        depth=queue.depth if queue is not None else ledger.queued,
        busy=queue.busy if queue is not None else len(ledger.running),
        prefill_ns=total("prefill_ns"),
        decode_ns=total("decode_ns"),
        reload_ns=total("reload_ns"),
        upstream_wait_ns=total("upstream_wait_ns"),
        truncated=total("truncated"),
        reloaded=total("reloaded"),
        truncations=truncations,
        reloads=reloads,
        queueing=queueing,
        lane_facts=lane_facts(ledger, queue, now, span),
    )
