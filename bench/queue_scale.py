"""Scenario 4, scale of the queue: 100, 1,000 and 10,000 queued requests held in the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass

import aiohttp

from bench.chart import BarChart
from bench.contenders import SIM_MODEL, SimTiming, start_lanes, start_simulator
from bench.figures import fmt_ms, percentile
from bench.loadgen import LoadSpec
from bench.procs import Service, python_argv
from bench.report import Context, Section, Target, markdown_table
from bench.sampler import timed_get

__all__ = ["Level", "run"]

# The proxy's upstream poll and health check (every 5 s by default) each cost a few ms of
# CPU: landing in the idle window they made the idle rate several times too high, so that a
# smoke run's small admission cost came out negative ("not measured"). Off for this scenario.
QUIET_PROXY = ("--stats-poll-s=86400", "--health-interval-s=86400")

# Each held request asks for far more tokens than the blocked lane will ever produce.
HOLD = {"model": SIM_MODEL, "prompt": "hold", "stream": False, "options": {"num_predict": 10**6}}


@dataclass
class Level:
    """The proxy with `depth` requests queued."""

    depth: int
    added: int
    fill_s: float
    cpu_per_request_s: float
    rss_bytes: int
    stats_p50_s: float
    stats_max_s: float


async def _hold(url: str, count: int) -> asyncio.subprocess.Process:
    spec = LoadSpec(url=url, body=HOLD, mode="hold", requests=count, timeout_s=3600)
    process = await asyncio.create_subprocess_exec(
        *python_argv("-m", "bench.loadgen", json.dumps(asdict(spec))),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 120)
    if b"launched" not in line:
        raise RuntimeError(f"load generator did not launch: {line[:200]!r}")
    return process


async def _depth(session: aiohttp.ClientSession, proxy: Service) -> int:
    async with session.get(proxy.url + "/stats") as resp:
        doc = await resp.json()
    return int(doc["queue"]["depth"])


async def _settle(
    session: aiohttp.ClientSession, proxy: Service, want: int, limit_s: float
) -> None:
    """Wait until the proxy is idle again (< 25% of a core for 0.2 s) with `want` queued.

    `/stats` is read only once the proxy has gone quiet, so reading it barely adds to the
    admission cost being measured.
    """
    deadline = time.monotonic() + limit_s
    last = proxy.cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = proxy.cpu()
        quiet, last = now - last < 0.05, now
        if quiet and await _depth(session, proxy) >= want:
            return
    raise RuntimeError(f"queue never reached {want} (at {await _depth(session, proxy)})")


async def _warm_up(session: aiohttp.ClientSession, proxy: Service, count: int) -> None:
    """Queue `count` requests and let them go, so first-use costs stay out of the figures."""
    process = await _hold(proxy.url, count)
    await _settle(session, proxy, count, limit_s=120)
    await _release([process])
    for _ in range(600):  # the proxy drops a ticket as soon as its client goes away
        if await _depth(session, proxy) == 0:
            return
        await asyncio.sleep(0.1)


async def _release(holders: list[asyncio.subprocess.Process]) -> None:
    """Close the load generators' stdin: they cancel their requests and exit."""
    for process in holders:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
    for process in holders:
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run(ctx: Context) -> Section:
    """Run scenario 4 and return its section."""
    begin = time.monotonic()
    checkpoints = (10, 50, 200) if ctx.smoke else (100, 1000, 10_000)
    sim = await start_simulator(SimTiming(lanes=1, decode_tps=1.0), ctx.tmp)
    proxy = await start_lanes(
        sim.url, ctx.tmp, lanes=1, max_queue=checkpoints[-1] + 100, extra=QUIET_PROXY
    )
    holders: list[asyncio.subprocess.Process] = []
    levels: list[Level] = []
    idle_rss = proxy.rss()
    try:
        async with aiohttp.ClientSession() as session:
            # The first request takes the only lane and keeps it; all later ones queue.
            holders.append(await _hold(proxy.url, 1))
            await _warm_up(session, proxy, checkpoints[0])
            idle0, t_idle = proxy.cpu(), time.monotonic()
            await asyncio.sleep(0.5)
            idle_rate = (proxy.cpu() - idle0) / (time.monotonic() - t_idle)
            depth = 0
            for target in checkpoints:
                added = target - depth
                cpu0, t0 = proxy.cpu(), time.monotonic()
                holders.append(await _hold(proxy.url, added))
                await _settle(session, proxy, target, limit_s=300)
                fill_s = time.monotonic() - t0
                cost = (proxy.cpu() - cpu0 - idle_rate * fill_s) / added
                ctx.log(f"queue scale: {target} queued in {fill_s:.1f} s")
                await asyncio.sleep(0.2)
                times = [(await timed_get(session, proxy.url + "/stats"))[0] for _ in range(20)]
                levels.append(
                    Level(
                        target, added, fill_s, cost, proxy.rss(), percentile(times, 50), max(times)
                    )
                )
                depth = target
    finally:
        await _release(holders)
        peak = proxy.peak_rss()
        await proxy.stop()
        await sim.stop()
    section = Section("queue", "4. Scale of the queue: up to 10,000 queued requests")
    _render(section, levels, idle_rss, peak)
    section.seconds = time.monotonic() - begin
    return section


def _render(section: Section, levels: list[Level], idle_rss: int, peak: int) -> None:
    section.body = [
        "`lanes serve --lanes 1` in front of a simulator whose only slot is held by one endless "
        "request; load-generator processes then open requests that all queue in the proxy. "
        "*Admission cost* is the proxy's CPU time (from `/proc/<pid>/task/*/schedstat`) "
        "spent while a batch of requests arrived and queued, less its idle rate over the same "
        "time, per request: accepting the connection, parsing HTTP and JSON, and taking a "
        "ticket; the proxy's periodic upstream polls are off, so they fall in neither window. "
        "*Fill time* runs until the proxy is idle again with every request queued. "
        "`/stats` latency is 20 sequential GETs with the queue full.",
        "",
    ]
    rows = [
        [
            f"{lv.depth:,}",
            f"{lv.added:,}",
            f"{lv.fill_s:.2f} s",
            f"{lv.cpu_per_request_s * 1e6:.0f} µs",
            f"{lv.rss_bytes / 1e6:.1f} MB",
            fmt_ms(lv.stats_p50_s),
            fmt_ms(lv.stats_max_s),
        ]
        for lv in levels
    ]
    header = ["queued", "added in step", "fill time", "admission CPU / request", "RSS",
              "`/stats` p50", "`/stats` max"]  # fmt: skip
    section.body += markdown_table(header, rows)
    section.body += [
        "",
        f"RSS idle before the run: {idle_rss / 1e6:.1f} MB; peak (VmHWM): {peak / 1e6:.1f} MB.",
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
    top = levels[-1] if levels else None
    costs = [lv.cpu_per_request_s for lv in levels]
    spread = max(costs) / min(costs) if costs and min(costs) > 0 else math.nan
    if top is not None:
        section.headline = [
            f"{top.depth:,} requests queued in the proxy: RSS {top.rss_bytes / 1e6:.0f} MB, "
            f"`/stats` in {fmt_ms(top.stats_p50_s, 1)}, admission "
            f"{top.cpu_per_request_s * 1e6:.0f} µs CPU per request (largest/smallest step "
            f"{spread:.2f})."
        ]
    flat = None if math.isnan(spread) else spread <= 1.5
    section.targets = [
        Target(
            f"RSS ≤ 100 MB with {top.depth:,} queued" if top else "RSS ≤ 100 MB with 10,000 queued",
            f"{top.rss_bytes / 1e6:.1f} MB" if top else "—",
            None if top is None else top.rss_bytes <= 100e6,
        ),
        Target(
            "flat admission cost (largest / smallest per-request cost ≤ 1.5)",
            f"{spread:.2f}" if not math.isnan(spread) else "—",
            flat,
        ),
    ]
    section.data = {"levels": [asdict(lv) for lv in levels], "idle_rss": idle_rss, "peak_rss": peak}
