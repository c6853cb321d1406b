"""Scenario 4, scale of the queue: 10 to 10,000 queued requests held in the proxy, and the
floor's bytes per held connection beside them."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.contenders import SimTiming, start_lanes, start_simulator
from bench.figures import percentile
from bench.holders import QUIET_PROXY, hold_requests, release
from bench.memprofile import measure
from bench.procs import Service
from bench.queue_report import Level, render
from bench.report import Context, Section
from bench.sampler import timed_get

__all__ = ["PROBE", "Level", "run"]

# Admission is measured at each depth on a batch of this many more arrivals (let go again), so
# that every depth's figure carries the same fixed cost of one burst after a quiet spell: a
# batch of 10 cost 150-300 µs a request against 110-125 µs for 100 at the same depth.
PROBE = 100


async def _depth(session: aiohttp.ClientSession, proxy: Service) -> int:
    async with session.get(proxy.url + "/stats") as resp:
        doc = await resp.json()
    return int(doc["queue"]["depth"])


async def _settle(
    session: aiohttp.ClientSession, proxy: Service, want: int, limit_s: float
) -> tuple[float, float]:
    """Wait until the proxy is idle again (< 25% of a core for 0.2 s) with `want` queued;
    returns its CPU seconds and the monotonic time then, less the CPU of the `/stats` reads
    that asked for the depth (each is read only once the proxy has gone quiet)."""
    deadline = time.monotonic() + limit_s
    reads = 0.0  # CPU the proxy spent answering this wait's /stats reads
    last = proxy.cpu()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now, at = proxy.cpu(), time.monotonic()
        if now - last < 0.05:
            depth = await _depth(session, proxy)
            if depth >= want:
                return now - reads, at
            reads += proxy.cpu() - now
        last = proxy.cpu()
    raise RuntimeError(f"queue never reached {want} (at {await _depth(session, proxy)})")


async def _warm_up(session: aiohttp.ClientSession, proxy: Service, count: int) -> None:
    """Queue `count` requests and let them go, so first-use costs stay out of the figures."""
    process = await hold_requests(proxy.url, count)
    await _settle(session, proxy, count, limit_s=120)
    await release([process])
    await _back_to(session, proxy, 0)


async def _back_to(session: aiohttp.ClientSession, proxy: Service, depth: int) -> None:
    """Wait until let-go requests have left the queue (the proxy drops a ticket as soon as
    its client goes away) and at most `depth` wait."""
    for _ in range(600):
        if await _depth(session, proxy) <= depth:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"queue never fell to {depth} (at {await _depth(session, proxy)})")


async def _floor_bytes(sim: Service, ctx: Context, held: int) -> float:
    """RSS the floor adds per held connection (its requests wait in the simulator's queue)."""
    blocker = await hold_requests(sim.url, 1)  # the simulator's only slot, for good
    try:
        found = await measure("floor", sim, ctx.tmp, held, traced=False)
    finally:
        await release([blocker])
    ctx.log(f"queue scale: the floor holds {held} connections, {found.rss_bytes / held:.0f} B each")
    return found.rss_bytes / held


async def run(ctx: Context) -> Section:
    """Run scenario 4 and return its section."""
    begin = time.monotonic()
    checkpoints = (10, 50, 200) if ctx.smoke else (10, 100, 1000, 10_000)
    probe = 20 if ctx.smoke else PROBE
    sim = await start_simulator(SimTiming(lanes=1, decode_tps=1.0), ctx.tmp)
    try:
        proxy = await start_lanes(
            sim.url, ctx.tmp, lanes=1, max_queue=checkpoints[-1] + 2 * probe, extra=QUIET_PROXY
        )
        idle_rss = proxy.rss()
        levels, peak = await _fill(proxy, checkpoints, probe, ctx)
        floor = await _floor_bytes(sim, ctx, 100 if ctx.smoke else 2000)
    finally:
        await sim.stop()
    section = Section("queue", "4. Scale of the queue: up to 10,000 queued requests")
    render(section, levels, idle_rss, peak, floor)
    section.seconds = time.monotonic() - begin
    return section


async def _probe(
    session: aiohttp.ClientSession, proxy: Service, depth: int, size: int, idle_rate: float
) -> float:
    """Admission CPU per request of `size` more arrivals with `depth` queued; they are let go
    again, and the queue is back at `depth` on return."""
    cpu0, t0 = proxy.cpu(), time.monotonic()
    probe = await hold_requests(proxy.url, size)
    cpu1, t1 = await _settle(session, proxy, depth + size, limit_s=120)
    await release([probe])
    await _back_to(session, proxy, depth)
    return (cpu1 - cpu0 - idle_rate * (t1 - t0)) / size


async def _fill(
    proxy: Service, checkpoints: tuple[int, ...], probe: int, ctx: Context
) -> tuple[list[Level], int]:
    """Queue up to each checkpoint in turn and measure it there; the levels and the peak RSS."""
    holders: list[asyncio.subprocess.Process] = []
    levels: list[Level] = []
    try:
        async with aiohttp.ClientSession() as session:
            # The first request takes the only lane and keeps it; all later ones queue.
            holders.append(await hold_requests(proxy.url, 1))
            await _warm_up(session, proxy, probe)
            idle0, t_idle = proxy.cpu(), time.monotonic()
            await asyncio.sleep(1.0)  # its 4 Hz queue check: the idle rate a small step feels
            idle_rate = (proxy.cpu() - idle0) / (time.monotonic() - t_idle)
            depth = 0
            for target in checkpoints:
                added, t0 = target - depth, time.monotonic()
                holders.append(await hold_requests(proxy.url, added))
                _, t1 = await _settle(session, proxy, target, limit_s=300)
                ctx.log(f"queue scale: {target} queued in {t1 - t0:.1f} s")
                await asyncio.sleep(0.2)
                times = [(await timed_get(session, proxy.url + "/stats"))[0] for _ in range(20)]
                rss = proxy.rss()
                costs = [await _probe(session, proxy, target, probe, idle_rate) for _ in range(3)]
                cost = sorted(costs)[1]  # the median of three probes
                levels.append(
                    Level(
                        target, added, t1 - t0, probe, cost, rss, percentile(times, 50), max(times)
                    )
                )
                depth = target
    finally:
        await release(holders)
        peak = proxy.peak_rss()
        await proxy.stop()
    return levels, peak
