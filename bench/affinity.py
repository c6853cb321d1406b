"""Scenario: model affinity. Two models interleaved on an Ollama that holds one, three ways.

`python -m bench.affinity [--smoke] [--out PATH]` starts the simulated Ollama
(`OLLAMA_MAX_LOADED_MODELS=1`, 2 parallel slots) and the lane proxy in this process, on
loopback port 0, then sends the same batch of requests, alternating two models, three times:
straight to the simulator, through the proxy with affinity off (`affinity_wait_s = 0`), and
through the proxy with affinity on. Each run gets a fresh simulator. It prints a markdown table
(swaps counted by the simulator and by the proxy, wall time, requests per second, latency) and
writes it to `bench/results/affinity.md` (or `--out`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.log import configure_logging
from proxy.relay.app import create_app as create_proxy
from proxy.settings import ProxySettings
from proxy.simulator.app import create_app as create_simulator
from proxy.simulator.settings import SimulatorSettings

__all__ = ["Plan", "Row", "main", "render", "run"]

MODELS = ("llama3.2:latest", "qwen2.5:7b-instruct")
OUT = Path(__file__).resolve().parent / "results" / "affinity.md"


@dataclass(frozen=True)
class Plan:
    """How big a run is."""

    requests: int
    concurrency: int
    load_seconds: float
    decode_tps: float
    num_predict: int
    affinity_wait_s: float


FULL = Plan(100, 100, 0.5, 200.0, 40, 10.0)
SMOKE = Plan(24, 24, 0.05, 2000.0, 5, 5.0)


@dataclass(frozen=True)
class Row:
    """One way of sending the batch, and what it cost."""

    name: str
    sim_swaps: int
    proxy_swaps: int | None
    wall_s: float
    per_s: float
    p50_s: float
    p95_s: float
    failed: int


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def _batch(url: str, plan: Plan) -> tuple[float, list[float], int]:
    """Send the interleaved batch; returns wall time, per-request latencies and failures."""
    gate = asyncio.Semaphore(plan.concurrency)
    latencies: list[float] = []
    failed = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            nonlocal failed
            body = {
                "model": MODELS[i % 2],
                "prompt": "Summarise the plot of a short story.",
                "stream": False,
                "options": {"num_predict": plan.num_predict},
            }
            async with gate:
                started = time.perf_counter()
                async with session.post(url + "/api/generate", json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        failed += 1
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(plan.requests)))
        return time.perf_counter() - started, latencies, failed


async def _one_way(name: str, plan: Plan, affinity: float | None) -> Row:
    sim_settings = SimulatorSettings(
        listen="127.0.0.1:0",
        lanes=2,
        max_loaded_models=1,
        load_seconds=plan.load_seconds,
        decode_tps=plan.decode_tps,
        prefill_tps=50_000.0,
        seed=1,
    )
    sim, sim_url = await _start(create_simulator(sim_settings))
    proxy: web.AppRunner | None = None
    try:
        url = sim_url
        if affinity is not None:
            settings = ProxySettings(
                listen="127.0.0.1:0",
                upstreams=[{"name": "ollama", "url": sim_url, "lanes": 2, "max_loaded_models": 1}],
                affinity_wait_s=affinity,
                log_level="error",
            )
            proxy, url = await _start(create_proxy(settings))
        wall, latencies, failed = await _batch(url, plan)
        async with aiohttp.ClientSession() as session:
            sim_doc = await _get(session, sim_url + "/_sim/stats")
            proxy_swaps = None
            if proxy is not None:
                doc = await _get(session, url + "/stats")
                proxy_swaps = int(doc["upstreams"]["ollama"]["swaps"])
        swaps = sum(int(m["evictions"]) for m in sim_doc["models"].values())
        ordered = sorted(latencies)
        return Row(
            name=name,
            sim_swaps=swaps,
            proxy_swaps=proxy_swaps,
            wall_s=wall,
            per_s=plan.requests / wall,
            p50_s=statistics.median(ordered),
            p95_s=ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
            failed=failed,
        )
    finally:
        if proxy is not None:
            await proxy.cleanup()
        await sim.cleanup()


async def run(plan: Plan) -> list[Row]:
    """The three runs, one after the other."""
    return [
        await _one_way("direct to Ollama", plan, None),
        await _one_way("proxy, affinity off", plan, 0.0),
        await _one_way(
            f"proxy, affinity on ({plan.affinity_wait_s:g} s)", plan, plan.affinity_wait_s
        ),
    ]


def render(plan: Plan, rows: list[Row]) -> str:
    """The markdown section."""
    lines = [
        "## Model affinity: two models on a host that holds one",
        "",
        f"{plan.requests} requests alternating `{MODELS[0]}` and `{MODELS[1]}`, "
        f"{plan.concurrency} at once, against the simulated Ollama with "
        f"`OLLAMA_MAX_LOADED_MODELS=1`, 2 parallel slots, {plan.load_seconds:g} s per model "
        f"load, {plan.decode_tps:g} tokens/s decode, {plan.num_predict} tokens per answer. "
        "Swaps are model evictions counted by the simulator; the proxy's own count is its "
        "`/stats` `upstreams.<name>.swaps`.",
        "",
        "| Path | Swaps (Ollama) | Swaps (proxy) | Wall s | Requests/s | p50 s | p95 s | Failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        proxy = "-" if r.proxy_swaps is None else str(r.proxy_swaps)
        lines.append(
            f"| {r.name} | {r.sim_swaps} | {proxy} | {r.wall_s:.2f} | {r.per_s:.1f} "
            f"| {r.p50_s:.2f} | {r.p95_s:.2f} | {r.failed} |"
        )
    lines += [
        "",
        "Reproduce: `python -m bench.affinity` (`--smoke` for a seconds-long check).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scenario, print the table, write it to `--out`."""
    parser = argparse.ArgumentParser(prog="python -m bench.affinity", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a small, fast run")
    parser.add_argument("--out", type=Path, default=OUT, help=f"markdown file (default {OUT})")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    configure_logging("error")
    rows = asyncio.run(run(plan))
    text = render(plan, rows)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 1 if any(r.failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
