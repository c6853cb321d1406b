"""`lanes demo`: show the system working on a simulated Ollama, no GPU needed."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any, TextIO

import aiohttp

from proxy.simulator.server import RunningSimulator, start
from proxy.simulator.settings import SimulatorSettings
from proxy.status import ExitStatus

__all__ = ["register", "run", "run_demo"]

DEMO_MODEL = "llama3.2"


def register(subparsers: Any) -> None:
    """Add `lanes demo`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run a short demonstration on a simulated Ollama",
        description="Start a simulated Ollama on a free port and send it a few requests.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(run_demo())


def demo_settings() -> SimulatorSettings:
    """A quick simulator: 2 lanes, short load, fast tokens (flags and env are ignored)."""
    return SimulatorSettings(
        listen="127.0.0.1:0",
        lanes=2,
        load_seconds=0.5,
        prefill_tps=5000,
        decode_tps=150,
        max_queue=512,
        max_loaded_models=3,
        seed=1,
    )


async def run_demo(out: TextIO | None = None) -> int:
    """The demo; each step is a small function so later steps (proxy, miner) slot in."""
    stream = out or sys.stdout
    sim = await start(demo_settings())
    try:
        say = _printer(stream)
        say(f"simulated Ollama on {sim.url} (2 lanes per model)")
        async with aiohttp.ClientSession() as session:
            await step_version(session, sim, say)
            await step_stream(session, sim, say)
            await step_queueing(session, sim, say)
            await step_stats(session, sim, say)
    finally:
        await sim.stop()
    return ExitStatus.SUCCESS


def _printer(stream: TextIO) -> Any:
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.2f}s] {text}", file=stream, flush=True)

    return say


async def step_version(session: aiohttp.ClientSession, sim: RunningSimulator, say: Any) -> None:
    async with session.get(sim.url + "/api/version") as resp:
        say(f"GET /api/version -> {resp.status} {await resp.text()}")


async def step_stream(session: aiohttp.ClientSession, sim: RunningSimulator, say: Any) -> None:
    body = {"model": DEMO_MODEL, "prompt": "Say something short.", "options": {"num_predict": 24}}
    say("POST /api/generate (streamed; the first request loads the model)")
    chunks = 0
    async with session.post(sim.url + "/api/generate", json=body) as resp:
        async for line in resp.content:
            item = json.loads(line)
            if item.get("done"):
                ms = {k: v // 1_000_000 for k, v in item.items() if k.endswith("_duration")}
                say(f"  {chunks} chunks, done_reason={item['done_reason']}, durations ms {ms}")
            else:
                chunks += 1


async def step_queueing(session: aiohttp.ClientSession, sim: RunningSimulator, say: Any) -> None:
    say("5 chat requests at once on 2 lanes: 2 run, 3 wait their turn in FIFO order")

    async def one(i: int) -> None:
        body = {
            "model": DEMO_MODEL,
            "messages": [{"role": "user", "content": f"Question number {i}"}],
            "stream": False,
            "options": {"num_predict": 40},
        }
        async with session.post(sim.url + "/api/chat", json=body) as resp:
            data = await resp.json()
        say(f"  request {i} done: {data['eval_count']} tokens, status {resp.status}")

    await asyncio.gather(*(one(i) for i in range(1, 6)))


async def step_stats(session: aiohttp.ClientSession, sim: RunningSimulator, say: Any) -> None:
    async with session.get(sim.url + "/_sim/stats") as resp:
        stats = await resp.json()
    model = stats["models"]["llama3.2:latest"]
    say(
        f"/_sim/stats: requests {model['requests']}, completed {model['completed']}, "
        f"peak in flight {model['max_in_flight']} (lanes 2), loads {model['loads']}"
    )
