"""`lanes demo`'s story: a simulated Ollama, the proxy in front, a fair queue, the miner, stats."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp
from rich.console import Console

from proxy.listener import Listener, start_app
from proxy.log import configure_logging
from proxy.relay.app import create_app
from proxy.settings import ProxySettings
from proxy.simulator.server import start
from proxy.simulator.settings import SimulatorSettings
from proxy.stats.client import StatsUnavailable, fetch_stats
from proxy.stats.tables import show_stats, verdict_line
from proxy.status import ExitStatus

__all__ = ["DEMO_MODEL", "LANES", "WORKERS", "demo_settings", "run_demo"]

DEMO_MODEL = "qwen2.5:7b-instruct"
LANES = 2
WORKERS = 12
Say = Callable[[str], None]


def demo_settings() -> SimulatorSettings:
    """A quick simulator: 2 lanes, a short load, fast tokens (flags and env are ignored)."""
    return SimulatorSettings(
        listen="127.0.0.1:0",
        lanes=LANES,
        load_seconds=0.5,
        prefill_tps=20_000,
        decode_tps=600,
        max_queue=512,
        max_loaded_models=3,
        seed=1,
    )


async def run_demo(
    out: TextIO | None = None,
    *,
    miner: bool = True,
    watch: Callable[[str], Awaitable[object]] | None = None,
) -> int:
    """Simulator, then the proxy in front of it, then each step in turn.

    `watch`, if given, is called with the live dashboard's URL as soon as the proxy runs, and
    runs beside the steps (a screenshot of the page under load, for one); it is cancelled if
    it has not finished when the steps have.
    """
    stream = out or sys.stdout
    say = _printer(stream)
    configure_logging("warning")
    sim = await start(demo_settings())
    # The simulator runs in this process, whose environment says nothing of its slots: tell
    # the proxy its NUM_PARALLEL, so the lane map (and the verdict) are true.
    settings = ProxySettings(
        listen="127.0.0.1:0", upstream=sim.url, lanes=LANES, num_parallel=LANES, max_queue=256
    )
    proxy = await start_app(create_app(settings), settings.listen)
    watcher = None if watch is None else asyncio.ensure_future(watch(proxy.url + "/dashboard"))
    try:
        say(f"simulated Ollama on {sim.url} ({LANES} lanes per model)")
        say(f"lane proxy on {proxy.url} (lanes={LANES}), forwarding to it")
        say(f"live dashboard: {proxy.url}/dashboard (open it while the demo runs)")
        async with aiohttp.ClientSession() as session:
            await step_load(session, proxy, say)
            await step_fairness(session, proxy, say)
        if miner:
            await step_miner(proxy, say)
        say("lanes stats:")
        console = Console(file=stream, width=110, force_terminal=False)
        await show_stats(proxy.url, console)
        await step_verdict(proxy, say)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await proxy.stop()
        await sim.stop()
    return ExitStatus.SUCCESS


def _printer(stream: TextIO) -> Say:
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.2f}s] {text}", file=stream, flush=True)

    return say


async def step_verdict(proxy: Listener, say: Say) -> None:
    """End with what limited this run's throughput, as the proxy judges its last minute."""
    try:
        line = verdict_line(await fetch_stats(proxy.url))
    except StatsUnavailable as exc:
        line = f"unknown: {exc}"
    say(f"verdict of this run: {line or 'unknown: this proxy has none'}")


async def step_load(session: aiohttp.ClientSession, proxy: Listener, say: Say) -> None:
    """Load the model through the proxy (an empty prompt takes no lane)."""
    async with session.get(proxy.url + "/api/version") as resp:
        say(f"GET /api/version through the proxy -> {resp.status} {await resp.text()}")
    body = {"model": DEMO_MODEL, "prompt": "", "keep_alive": "5m"}
    async with session.post(proxy.url + "/api/generate", json=body) as resp:
        done = await resp.json()
    say(f"loaded {DEMO_MODEL}: done_reason={done.get('done_reason')}")


@dataclass
class _Timing:
    name: str
    client: str
    priority: str
    sent: float
    queue_ms: int = 0
    finished: float = 0.0


async def _chat(
    session: aiohttp.ClientSession, url: str, timing: _Timing, tokens: int, t0: float
) -> None:
    body = {
        "model": DEMO_MODEL,
        "messages": [{"role": "user", "content": f"Say {tokens} tokens for {timing.name}."}],
        "stream": False,
        "options": {"num_predict": tokens},
    }
    headers = {"X-Lanes-Client": timing.client, "X-Lanes-Priority": timing.priority}
    async with session.post(url + "/api/chat", json=body, headers=headers) as resp:
        await resp.read()
        timing.queue_ms = int(resp.headers.get("X-Lanes-Queue-Ms", "0"))
    timing.finished = time.monotonic() - t0


async def step_fairness(session: aiohttp.ClientSession, proxy: Listener, say: Say) -> None:
    """12 batch workers fill the queue; one interactive chat still goes first."""
    say(f"{WORKERS} miner workers (priority batch) send long requests at once on {LANES} lanes")
    t0 = time.monotonic()
    batch = [_Timing(f"worker {i}", "miner", "batch", 0.0) for i in range(WORKERS)]
    tasks = [asyncio.create_task(_chat(session, proxy.url, t, 200, t0)) for t in batch]
    await asyncio.sleep(0.15)
    person = _Timing("person", "chat-app", "interactive", time.monotonic() - t0)
    say("a person's chat app (priority interactive) asks a short question")
    await _chat(session, proxy.url, person, 20, t0)
    say(
        f"  interactive: waited {person.queue_ms} ms for a lane, answered at {person.finished:.2f}s"
    )
    await asyncio.gather(*tasks)
    started = person.sent + person.queue_ms / 1000
    overtaken = sum(1 for t in batch if t.sent + t.queue_ms / 1000 > started)
    say(f"  it went ahead of {overtaken} batch requests that were queued before it")
    waits = sorted(t.queue_ms for t in batch)
    say(
        f"  batch: {len(batch)} done by {max(t.finished for t in batch):.2f}s; "
        f"queue wait min {waits[0]} ms, median {waits[len(waits) // 2]} ms, max {waits[-1]} ms"
    )


async def step_miner(proxy: Listener, say: Say) -> None:
    """Mine the bundled sample through the proxy, then print the miner's summary."""
    from miner.runner import run_miner, samples_path
    from miner.settings import MinerSettings
    from miner.summary import render_summary

    sample = samples_path() / "standup.md"
    say(f"miner: {WORKERS} workers over {sample.name} through the proxy (batch priority)")
    with tempfile.TemporaryDirectory(prefix="lanes-demo-") as tmp:
        settings = MinerSettings(
            url=proxy.url,
            model=DEMO_MODEL,
            workers=WORKERS,
            db=Path(tmp) / "demo.db",
            progress=False,
        )
        summary = await run_miner(settings, [sample])
    for line in render_summary(summary).splitlines():
        say("  " + line)
    say(
        "  note: the miner pins num_ctx 8192 and the chats above used the model's default, "
        "so Ollama reloaded the model; lanes stats shows it under warnings"
    )
