"""Scenario 1, overhead: tiny and 200-chunk streamed requests, direct versus through each proxy."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.contenders import (
    LITELLM_KEY,
    SIM_MODEL,
    SimTiming,
    Skipped,
    start_floor,
    start_lanes,
    start_litellm,
    start_nginx,
    start_simulator,
)
from bench.figures import percentile
from bench.loadgen import LoadSpec
from bench.overhead_plan import Cell, Plan, Sample
from bench.overhead_report import WITH_DASHBOARDS, render
from bench.procs import Service, python_argv, run_json_module
from bench.report import Context, Section

__all__ = ["run"]


@dataclass
class Contender:
    """One way to reach the simulator; `service` is the process whose cost is measured."""

    name: str
    url: str
    model: str
    protocols: tuple[str, ...]
    service: Service | None = None
    headers: dict[str, str] = field(default_factory=dict)


DASHBOARDS = 4


class Dashboards:
    """`count` open dashboards on the proxy at `url`: `bench.overhead_pages` in its own process
    (readers of `/stats/stream` in this process, beside the load generator's pipes, lost
    the generator's output on this machine), closed by closing its stdin."""

    def __init__(self, url: str, count: int) -> None:
        self.url, self.count, self.events = url, count, 0
        self._process: asyncio.subprocess.Process | None = None

    async def open(self) -> None:
        """Start the readers and wait until each has its first event."""
        self._process = await asyncio.create_subprocess_exec(
            *python_argv("-m", "bench.overhead_pages", self.url, str(self.count)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if json.loads(line or b"{}").get("event") != "open":
            raise RuntimeError(f"the {self.count} dashboards did not open: {line!r}")

    async def close(self) -> None:
        """Disconnect the readers; `events` is then what they received."""
        if self._process is None:
            return
        out, _ = await asyncio.wait_for(self._process.communicate(b""), 60)
        lines = out.decode().strip().splitlines()
        self.events = int(json.loads(lines[-1])["events"]) if lines else 0


def _plan(smoke: bool) -> Plan:
    if smoke:
        return Plan(1, (2,), {2: 20}, 2, 2, 20, ("native",), ("v1",))
    return Plan(3, (1, 16, 64), {1: 150, 16: 600, 64: 1000}, 16, 32, 200)


def _body(contender: Contender, cell: Cell, chunks: int) -> tuple[str, dict[str, Any]]:
    tokens = chunks if cell.stream else 1
    if cell.protocol == "native":
        body = {"model": contender.model, "prompt": "hi", "stream": cell.stream}
        return "/api/generate", body | {"options": {"num_predict": tokens}}
    messages = [{"role": "user", "content": "hi"}]
    body = {"model": contender.model, "messages": messages, "stream": cell.stream}
    return "/v1/chat/completions", body | {"max_tokens": tokens}


async def _measure(contender: Contender, cell: Cell, plan: Plan) -> Sample:
    path, body = _body(contender, cell, plan.stream_chunks)
    spec = LoadSpec(
        url=contender.url,
        path=path,
        body=body,
        headers=contender.headers,
        concurrency=cell.concurrency,
        requests=cell.requests,
        warmup=cell.concurrency,  # one request per worker: every connection opened first
        timeout_s=120.0,
    )
    cpu0 = contender.service.cpu() if contender.service else 0.0
    result = await run_json_module("bench.loadgen", asdict(spec), limit_s=600)
    cpu1 = contender.service.cpu() if contender.service else 0.0
    lat: list[float] = result["latencies"]
    ttfb: list[float] = result["ttfb"]
    chunks: list[int] = result["chunks"]
    errors = len(result["errors"]) + sum(
        n for code, n in result["statuses"].items() if code != "200"
    )
    wall = float(result["wall_s"])
    return Sample(
        p50=percentile(lat, 50),
        p99=percentile(lat, 99),
        ttfb_p50=percentile(ttfb, 50),
        relay_p50=percentile([whole - first for whole, first in zip(lat, ttfb, strict=True)], 50),
        rps=len(lat) / wall if wall > 0 else math.nan,
        cpu_s=cpu1 - cpu0,
        requests=len(lat),
        chunks=sum(chunks),
        errors=errors,
    )


async def _round_robin(
    contenders: list[Contender], cells: list[Cell], plan: Plan, ctx: Context
) -> None:
    for round_no in range(plan.rounds):
        for cell in cells:
            users = [c for c in contenders if cell.protocol in c.protocols]
            shift = round_no % len(users)
            for contender in users[shift:] + users[:shift]:
                ctx.log(f"overhead round {round_no + 1}: {cell.label} via {contender.name}")
                sample = await _measure(contender, cell, plan)
                plan.samples.setdefault(cell.label, {}).setdefault(contender.name, []).append(
                    sample
                )


async def _contenders(
    sim: Service,
    ctx: Context,
    skipped: list[Skipped],
    services: list[Service],
    pages: list[Dashboards],
) -> list[Contender]:
    """Start every contender in front of `sim`; each started process joins `services`, and
    the dashboards opened on the second `lanes serve` join `pages`."""
    found = [Contender("direct", sim.url, SIM_MODEL, ("native", "v1"))]
    lanes = await start_lanes(sim.url, ctx.tmp, lanes=128)
    services.append(lanes)
    found.append(Contender("lanes serve", lanes.url, SIM_MODEL, ("native", "v1"), lanes))
    watched = await start_lanes(sim.url, ctx.tmp, lanes=128)
    services.append(watched)
    dashboards = Dashboards(watched.url, DASHBOARDS)
    pages.append(dashboards)
    await dashboards.open()
    found.append(Contender(WITH_DASHBOARDS, watched.url, SIM_MODEL, ("native", "v1"), watched))
    floor = await start_floor(sim.url, ctx.tmp)  # the yardstick: a bare aiohttp pass-through
    services.append(floor)
    found.append(Contender("floor", floor.url, SIM_MODEL, ("native", "v1"), floor))
    port = int(sim.url.rsplit(":", 1)[1])
    if "nginx" in ctx.contenders:
        nginx = await start_nginx(port, ctx.tmp, install=ctx.install)
        if isinstance(nginx, Skipped):
            skipped.append(nginx)
        else:
            services.append(nginx)
            found.append(Contender("nginx", nginx.url, SIM_MODEL, ("native", "v1"), nginx))
    if "litellm" in ctx.contenders:
        litellm = await start_litellm(sim.url, ctx.tmp, install=ctx.install)
        if isinstance(litellm, Skipped):
            skipped.append(litellm)
        else:
            services.append(litellm)
            auth = {"Authorization": f"Bearer {LITELLM_KEY}"}
            found.append(Contender("LiteLLM", litellm.url, "bench", ("v1",), litellm, auth))
    return found


async def run(ctx: Context) -> Section:
    """Run scenario 1 and return its section."""
    section = Section(
        "overhead", "1. Overhead: direct vs lanes serve vs the floor vs nginx vs LiteLLM"
    )
    begin = time.monotonic()
    plan = _plan(ctx.smoke)
    skipped: list[Skipped] = []
    if "litellm" not in ctx.contenders:
        skipped.append(Skipped("LiteLLM", "not selected (--contenders)"))
    if "nginx" not in ctx.contenders:
        skipped.append(Skipped("nginx", "not selected (--contenders)"))
    peak_rss: dict[str, int] = {}
    feed_events = 0
    tiny = [
        Cell(p, False, c, plan.requests[c]) for p in plan.tiny_protocols for c in plan.concurrencies
    ]
    streams = [
        Cell(p, True, plan.stream_concurrency, plan.stream_requests) for p in plan.stream_protocols
    ]
    # Tiny requests meet a simulator doing no work; streams one that decodes 200 tok/s, so
    # each chunk is its own write. Smoke mode uses the streaming one for both.
    phases = [(1e9, tiny), (200.0, streams)] if not ctx.smoke else [(200.0, tiny + streams)]
    for number, (decode_tps, cells) in enumerate(phases):
        sim = await start_simulator(SimTiming(lanes=128, decode_tps=decode_tps), ctx.tmp)
        services: list[Service] = [sim]
        pages: list[Dashboards] = []
        try:
            found = await _contenders(sim, ctx, [] if number else skipped, services, pages)
            await _round_robin(found, cells, plan, ctx)
            for c in found:
                if c.service:
                    peak_rss[c.name] = max(peak_rss.get(c.name, 0), c.service.peak_rss())
        finally:
            for dashboards in pages:
                await dashboards.close()
                feed_events += dashboards.events
            for service in services:
                await service.stop()
    render(section, plan, skipped, peak_rss, feed_events)
    section.seconds = time.monotonic() - begin
    return section
