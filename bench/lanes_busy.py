"""Scenario 2, lanes kept busy: the miner (12 workers), direct vs through the proxy, 1-8 lanes."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.chart import BarChart
from bench.contenders import SIM_MODEL, SimTiming, start_lanes, start_simhost
from bench.figures import fifo_slots, fmt_ms, fmt_ratio, median, percentile
from bench.minerhost import copy_samples
from bench.procs import Service, run_json_module
from bench.report import Context, Section, Target, markdown_table
from bench.sampler import Sampler, get_json, post_json

__all__ = ["BusyRun", "realistic_timing", "run", "upstream_view"]

# One lane, unscaled: ~1,200 prompt tokens at 1,000 tok/s, then the reply. The simulator's
# JSON reply for the miner's schema is ~880 tokens, so decoding runs at 88 tok/s to take
# what ~400 tokens take at 40 tok/s (10 s). Time is compressed by SCALE.
PREFILL_TPS = 1000.0
DECODE_TPS = 88.0
BATCH_ALPHA = 0.7


def realistic_timing(lanes: int, scale: float) -> SimTiming:
    """The miner timing model with `lanes` slots, `scale` times faster than real."""
    return SimTiming(
        lanes=lanes,
        load_seconds=0.0,
        prefill_tps=PREFILL_TPS * scale,
        decode_tps=DECODE_TPS * scale,
        batch_alpha=BATCH_ALPHA,
    )


@dataclass
class BusyRun:
    """One miner run at one lane count, direct or through the proxy."""

    mode: str
    lanes: int
    segments: int
    failed: int
    retries: int
    seg_per_s: float
    output_tokens_per_call: float
    service_p50_s: float
    gap_p50_s: float
    gap_p99_s: float
    upstream_utilization: float
    stats_utilization: float | None
    stats_busy_ratio_1m: float | None


def upstream_view(timeline: list[list[float]], lanes: int) -> tuple[list[float], float, float]:
    """(gaps, utilization, median service) from the simulator's `[arrived, ended]` rows.

    Slot starts come from replaying the simulator's FIFO slots (`fifo_slots`). Utilization
    is busy slot-seconds over `lanes` × the window from the first to the last start, the
    time during which some request was waiting for a slot.
    """
    slots = fifo_slots(timeline, lanes)
    if len(slots) <= lanes:
        return [], math.nan, math.nan
    lo, hi = min(s for s, _, _ in slots), max(s for s, _, _ in slots)
    busy = sum(max(0.0, min(e, hi) - max(s, lo)) for s, e, _ in slots)
    utilization = busy / (lanes * (hi - lo)) if hi > lo else math.nan
    gaps = [g for s, _, g in slots if g is not None and s <= hi]
    return gaps, utilization, median([e - s for s, e, _ in slots])


async def _one_run(
    mode: str, lanes: int, sim: Service, proxy: Service, inputs: Path, ctx: Context, tag: str
) -> BusyRun:
    await post_json(sim.url + "/_bench/timeline")
    url = proxy.url if mode == "proxy" else sim.url
    spec: dict[str, object] = {
        "url": url,
        "model": SIM_MODEL,
        "workers": 12,
        "db": str(ctx.tmp / f"miner-{tag}.db"),
        "inputs": [str(inputs)],
    }
    async with Sampler(proxy.url + "/stats", 0.1) as sampler:
        result = await run_json_module("bench.minerhost", spec, limit_s=900)
    timeline = (await get_json(sim.url + "/_bench/timeline"))["requests"]
    gaps, utilization, service = upstream_view(timeline, lanes)
    stats_util: float | None = None
    ratio_1m: float | None = None
    if mode == "proxy":
        queued = [d for _, d in sampler.samples if d["queue"]["depth"] > 0]
        ratios = [d["lanes"]["busy"] / d["lanes"]["configured"] for d in queued]
        stats_util = sum(ratios) / len(ratios) if ratios else None
        last = await get_json(proxy.url + "/stats")
        ratio_1m = float(last["utilization"]["busy_ratio_1m"])
    calls = max(1, int(result["calls"]))
    return BusyRun(
        mode=mode,
        lanes=lanes,
        segments=int(result["segments"]),
        failed=int(result["failed"]),
        retries=int(result["retries"]),
        seg_per_s=int(result["segments"]) / float(result["wall_s"]),
        output_tokens_per_call=int(result["output_tokens"]) / calls,
        service_p50_s=service,
        gap_p50_s=percentile(gaps, 50),
        gap_p99_s=percentile(gaps, 99),
        upstream_utilization=utilization,
        stats_utilization=stats_util,
        stats_busy_ratio_1m=ratio_1m,
    )


def _plan(smoke: bool) -> tuple[tuple[int, ...], int, float, dict[int, int]]:
    """(lane counts, rounds, time scale, sample copies per lane count)."""
    if smoke:
        return (2,), 1, 400.0, {2: 1}
    return (1, 2, 4, 8), 2, 50.0, {1: 1, 2: 2, 4: 3, 8: 4}


async def run(ctx: Context) -> Section:
    """Run scenario 2 and return its section."""
    begin = time.monotonic()
    lane_counts, rounds, scale, copies = _plan(ctx.smoke)
    runs: list[BusyRun] = []
    for lanes in lane_counts:
        inputs = ctx.tmp / f"inputs-{lanes}"
        copy_samples(inputs, copies[lanes])
        sim = await start_simhost(realistic_timing(lanes, scale), ctx.tmp)
        proxy = await start_lanes(sim.url, ctx.tmp, lanes=lanes)
        try:
            for round_no in range(rounds):
                order = ("direct", "proxy") if round_no % 2 == 0 else ("proxy", "direct")
                for mode in order:
                    ctx.log(f"lanes busy: {lanes} lane(s), round {round_no + 1}, {mode}")
                    tag = f"{lanes}-{mode}-{round_no}"
                    runs.append(await _one_run(mode, lanes, sim, proxy, inputs, ctx, tag))
        finally:
            await proxy.stop()
            await sim.stop()
    section = Section("lanes", "2. Lanes kept busy: the miner direct vs through the proxy")
    _render(section, runs, lane_counts, rounds, scale)
    section.seconds = time.monotonic() - begin
    return section


def _mid(runs: list[BusyRun], mode: str, lanes: int, attr: str) -> float:
    values = [getattr(r, attr) for r in runs if r.mode == mode and r.lanes == lanes]
    return median([math.nan if v is None else float(v) for v in values])


def _render(
    section: Section, runs: list[BusyRun], lane_counts: tuple[int, ...], rounds: int, scale: float
) -> None:
    real = 1200 / PREFILL_TPS + 400 / 40
    section.body = [
        f"`miner run` with 12 workers on {runs[0].segments if runs else 0}+ segments of the "
        f"bundled samples, {rounds} round(s) per lane count, direct and proxy alternating. "
        f"Timing model: prefill at {PREFILL_TPS:.0f} tok/s and decode at {DECODE_TPS:.0f} tok/s "
        f"per request (batch alpha {BATCH_ALPHA}), about {real:.1f} s per request on one lane, "
        f"with time compressed {scale:.0f}× so the run fits in minutes. Compression makes any "
        "fixed per-request cost of the proxy look larger than on a real model, not smaller.",
        "",
        "*Upstream utilization* is busy slot-seconds over lanes × the time from the first to "
        "the last request start (while something waited), measured by the simulator; "
        "*`/stats` utilization* averages `lanes.busy / lanes.configured` over 100 ms samples "
        "taken while `queue.depth > 0`; *gap* is the time between one request finishing "
        "and the next starting on a freed slot.",
        "",
    ]
    header = ["lanes", "seg/s direct", "seg/s proxy", "proxy/direct", "service p50",
              "gap p99 direct", "gap p99 proxy", "upstream util proxy", "`/stats` util",
              "failed / retried"]  # fmt: skip
    rows = []
    ratios: list[float] = []
    utils: list[float] = []
    for n in lane_counts:
        pairs = [
            (p.seg_per_s, d.seg_per_s)
            for p, d in zip(
                [r for r in runs if r.lanes == n and r.mode == "proxy"],
                [r for r in runs if r.lanes == n and r.mode == "direct"],
                strict=False,
            )
        ]
        ratio = median([p / d for p, d in pairs if d > 0])
        ratios.append(ratio)
        util = _mid(runs, "proxy", n, "upstream_utilization")
        utils.append(util)
        stats_util = _mid(runs, "proxy", n, "stats_utilization")
        failed = sum(r.failed for r in runs if r.lanes == n)
        retries = sum(r.retries for r in runs if r.lanes == n)
        rows.append([
            str(n), f"{_mid(runs, 'direct', n, 'seg_per_s'):.2f}",
            f"{_mid(runs, 'proxy', n, 'seg_per_s'):.2f}", fmt_ratio(ratio),
            fmt_ms(_mid(runs, "proxy", n, "service_p50_s"), 0),
            fmt_ms(_mid(runs, "direct", n, "gap_p99_s")),
            fmt_ms(_mid(runs, "proxy", n, "gap_p99_s")),
            f"{util:.2%}", "—" if math.isnan(stats_util) else f"{stats_util:.2%}",
            f"{failed} / {retries}",
        ])  # fmt: skip
    section.body += markdown_table(header, rows)
    tokens = median([r.output_tokens_per_call for r in runs])
    section.body += ["", f"Output tokens per call (simulated JSON reply): {tokens:.0f}."]
    section.charts = [
        (
            "lanes-busy-seg-per-s.png",
            BarChart(
                "Miner throughput, 12 workers (seg/s, time-compressed)",
                "seg/s",
                [f"{n} lane{'s' if n > 1 else ''}" for n in lane_counts],
                [
                    (mode, [_mid(runs, mode, n, "seg_per_s") for n in lane_counts])
                    for mode in ("direct", "proxy")
                ],
            ),
        )
    ]
    worst_ratio = min(ratios, default=math.nan)
    worst_util = min(utils, default=math.nan)
    if ratios:
        at = lane_counts[ratios.index(worst_ratio)]
        lanes = f"{at} lane" if at == 1 else f"{at} lanes"
        section.headline = [
            f"Miner, 12 workers, {lane_counts[0]}-{lane_counts[-1]} lanes: throughput through "
            f"the proxy is {fmt_ratio(worst_ratio)} of direct at worst ({lanes}); upstream lane "
            f"utilization at least {worst_util:.1%}."
        ]
    section.targets = [
        Target(
            "throughput through the proxy ≥ 99% of direct at every lane count",
            f"worst {fmt_ratio(worst_ratio)}",
            None if math.isnan(worst_ratio) else worst_ratio >= 0.99,
        ),
        Target(
            "lane utilization ≥ 99% while the queue is non-empty",
            f"worst {worst_util:.2%}",
            None if math.isnan(worst_util) else worst_util >= 0.99,
        ),
    ]
    section.data = {"runs": [asdict(r) for r in runs], "scale": scale}
