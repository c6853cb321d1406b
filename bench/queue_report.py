"""Tables, chart and targets of scenario 4 (scale of the queue), from its measured levels."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench.chart import BarChart
from bench.figures import fmt_ms
from bench.report import Section, Target, markdown_table

__all__ = ["Level", "render"]

IDLE_RSS_LIMIT = 60e6
PROBE_DOC = 100  # the probe's size, named in the text when no level was measured


@dataclass
class Level:
    """The proxy with `depth` requests queued."""

    depth: int
    added: int  # requests opened to reach `depth` from the level before
    fill_s: float
    probe: int  # arrivals the admission cost was measured on, at `depth`
    cpu_per_request_s: float
    rss_bytes: int
    stats_p50_s: float
    stats_max_s: float


def _ratio(value: float, limit: float) -> bool | None:
    return None if math.isnan(value) else value <= limit


def _targets(levels: list[Level], idle_rss: int, floor_bytes: float) -> list[Target]:
    top = levels[-1] if levels else None
    costs = [lv.cpu_per_request_s for lv in levels]
    spread = max(costs) / min(costs) if costs and min(costs) > 0 else math.nan
    per = (top.rss_bytes - idle_rss) / top.depth if top else math.nan
    ratio = per / floor_bytes if floor_bytes > 0 else math.nan
    depths = f"{levels[0].depth:,} to {top.depth:,}" if top else "10 to 10,000"
    stats = top.stats_p50_s if top else math.nan
    return [
        Target(
            "RSS per queued request ≤ 1.3 × the floor's bytes per held connection",
            f"{per / 1e3:.1f} KB vs {floor_bytes / 1e3:.1f} KB = {ratio:.2f}×",
            _ratio(ratio, 1.3),
            issue=16,
        ),
        Target(
            "idle RSS ≤ 60 MB", f"{idle_rss / 1e6:.1f} MB", idle_rss <= IDLE_RSS_LIMIT, issue=16
        ),
        Target(
            f"admission cost flat in depth: largest / smallest per-request cost ≤ 1.3 "
            f"({depths} queued)",
            f"{spread:.2f}",
            _ratio(spread, 1.3),
            issue=16,
        ),
        Target(
            f"`/stats` ≤ 5 ms with {top.depth if top else 10_000:,} queued (p50 of 20)",
            fmt_ms(stats),
            _ratio(stats, 0.005),
            issue=16,
        ),
    ]


def render(
    section: Section, levels: list[Level], idle_rss: int, peak: int, floor_bytes: float
) -> None:
    """Fill `section` with the queue table, chart, headline, targets and raw data."""
    section.body = [
        "`lanes serve --lanes 1` in front of a simulator whose only slot is held by one endless "
        "request; load-generator processes then open requests that all queue in the proxy. "
        "*Admission cost* at a depth is the proxy's CPU time (from "
        "`/proc/<pid>/task/*/schedstat`) spent while a probe of "
        f"{levels[0].probe if levels else PROBE_DOC} more requests arrived and queued behind "
        "that many, less its idle rate over the same time, per request: accepting the "
        "connection, parsing HTTP and JSON, and taking a ticket (the probe is then let go; the "
        "median of three probes); "
        "the proxy's periodic upstream polls are off, so they fall in neither window. "
        "*Fill time* runs until the proxy is idle again with every request of the step queued. "
        "`/stats` latency is 20 sequential GETs with the queue full. The floor "
        "(bench/floor.py) then holds requests in front of the same blocked simulator, where "
        "they wait in its queue: its RSS growth per held connection is the yardstick for the "
        "proxy's RSS per queued request.",
        "",
    ]
    rows = [
        [
            f"{lv.depth:,}",
            f"{lv.added:,}",
            f"{lv.fill_s:.2f} s",
            f"{lv.probe:,}",
            f"{lv.cpu_per_request_s * 1e6:.0f} µs",
            f"{lv.rss_bytes / 1e6:.1f} MB",
            fmt_ms(lv.stats_p50_s),
            fmt_ms(lv.stats_max_s),
        ]
        for lv in levels
    ]
    header = ["queued", "added in step", "fill time", "probe", "admission CPU / request", "RSS",
              "`/stats` p50", "`/stats` max"]  # fmt: skip
    section.body += markdown_table(header, rows)
    section.body += [
        "",
        f"RSS idle before the run: {idle_rss / 1e6:.1f} MB; peak (VmHWM): {peak / 1e6:.1f} MB. "
        f"The floor: {floor_bytes / 1e3:.1f} KB per held connection.",
    ]
    section.charts = [
        (
            "queue-admission-cost.png",
            BarChart(
                "Admission CPU per request as the queue grows (us)",
                "us",
                [f"{lv.depth:,} queued" for lv in levels],
                [("lanes serve", [lv.cpu_per_request_s * 1e6 for lv in levels])],
            ),
        )
    ]
    section.targets = _targets(levels, idle_rss, floor_bytes)
    top = levels[-1] if levels else None
    if top is not None:
        per = (top.rss_bytes - idle_rss) / top.depth
        costs = [lv.cpu_per_request_s for lv in levels]
        section.headline = [
            f"{top.depth:,} requests queued in the proxy: RSS {top.rss_bytes / 1e6:.0f} MB "
            f"({per / 1e3:.1f} KB each; the floor holds a connection in "
            f"{floor_bytes / 1e3:.1f} KB), `/stats` in {fmt_ms(top.stats_p50_s, 1)}, admission "
            f"{top.cpu_per_request_s * 1e6:.0f} µs CPU per request (largest/smallest step "
            f"{max(costs) / min(costs):.2f})."
        ]
    section.data = {
        "levels": [asdict(lv) for lv in levels],
        "idle_rss": idle_rss,
        "peak_rss": peak,
        "floor_bytes_per_held": floor_bytes,
    }
