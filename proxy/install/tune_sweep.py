"""`lanes tune`'s I/O: the request it sends, the sweep against Ollama, and what it reads first.

Ollama is read through `proxy.ollama_state.OllamaReader` and a running proxy through
`proxy.stats.client.fetch_stats`; the numbers are judged by the pure `proxy.install.tune`.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from proxy.install.tune import StepResult
from proxy.machine.environment import ollama_environment
from proxy.machine.listeners import port_listeners
from proxy.machine.machine import Machine
from proxy.ollama import default_num_parallel
from proxy.ollama_state import OllamaError, OllamaReader
from proxy.stats.client import fetch_stats

__all__ = [
    "OllamaFacts",
    "ollama_env",
    "read_ollama_facts",
    "representative_request",
    "sweep",
    "upstream_of",
]

_NS = 1e9
READ_TIMEOUT_S = 30.0  # Ollama's facts, before the sweep
STATS_TIMEOUT_S = 10.0  # a running proxy's /stats
SWEEP_TIMEOUT_S = 3600.0  # one request of the sweep


def representative_request(model: str | None) -> dict[str, Any]:
    """The miner's request for the largest segment of the first bundled sample."""
    from miner import samples_path
    from miner.formats import discover, read_source
    from miner.prompt import build_body
    from miner.segments import Budget, segment_turns
    from miner.settings import MinerSettings

    defaults = MinerSettings(db=Path(os.devnull))
    files, _ = discover([samples_path()])
    parsed = read_source(files[0])
    budget = Budget(defaults.segment_min_tokens, defaults.segment_max_tokens)
    segments = segment_turns(str(files[0]), parsed.turns, budget, merge_turns=parsed.merge_turns)
    largest = max(segments, key=lambda s: len(s.text))
    return build_body(
        largest,
        api="ollama",
        model=model or defaults.model,
        num_ctx=defaults.num_ctx,
        num_predict=defaults.num_predict,
        keep_alive=defaults.keep_alive,
    )


async def _one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    begin = time.monotonic()
    async with session.post(url, json=body) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {url}: {text[:200]}")
    doc: dict[str, Any] = json.loads(text)
    doc["_latency_s"] = time.monotonic() - begin
    return doc


async def _step(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], lanes: int, rounds: int
) -> StepResult:
    await asyncio.gather(*(_one(session, url, body) for _ in range(lanes)))  # warm-up
    docs: list[dict[str, Any]] = []

    async def worker() -> None:
        for _ in range(rounds):
            docs.append(await _one(session, url, body))

    begin = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(lanes)))
    wall = time.monotonic() - begin
    keys = ("load_duration", "prompt_eval_duration", "eval_duration")
    return StepResult(
        lanes=lanes,
        wall_s=wall,
        output_tokens=sum(int(d.get("eval_count", 0)) for d in docs),
        latencies_s=[d["_latency_s"] for d in docs],
        slot_waits_s=[
            max(0.0, (d.get("total_duration", 0) - sum(d.get(k, 0) for k in keys)) / _NS)
            for d in docs
            if "total_duration" in d
        ],
    )


async def sweep(
    ollama: str, body: dict[str, Any], plan: list[int], rounds: int, out: TextIO
) -> list[StepResult]:
    """Measure every step of `plan` against `ollama` with `body` (non-streaming)."""
    path = "/api/chat" if "messages" in body else "/api/generate"
    body = {**body, "stream": False}
    timeout = aiohttp.ClientTimeout(total=SWEEP_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0)
    steps = []
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for lanes in plan:
            step = await _step(session, ollama + path, body, lanes, rounds)
            print(f"  {lanes:>3} at once: {step.tokens_per_s:.1f} tok/s", file=out, flush=True)
            steps.append(step)
    return steps


async def upstream_of(proxy: str, token: str | None = None) -> str:
    """The upstream a running proxy forwards to, from its `/stats` (`token` if it needs one)."""
    stats = await fetch_stats(proxy, token=token, timeout_s=STATS_TIMEOUT_S)
    return str(stats["upstream"]["url"]).rstrip("/")


@dataclass(frozen=True)
class OllamaFacts:
    """What `lanes tune` reads from Ollama before the sweep."""

    version: str
    model_info: Mapping[str, object] = field(default_factory=dict)  # /api/show; empty if unknown
    loaded_context: int | None = None  # the model's context length, when it is loaded


async def read_ollama_facts(ollama: str, model: str) -> OllamaFacts:
    """Ollama's version, the model's `/api/show` model_info and its loaded context length."""
    async with aiohttp.ClientSession() as session:
        reader = OllamaReader(session, ollama, timeout_s=READ_TIMEOUT_S)
        version = await reader.version()
        try:
            info = (await reader.show(model)).model_info
        except OllamaError:
            info = {}
        loaded = await reader.loaded()
    ctx = next((m.context_length for m in loaded if m.name == model), None)
    return OllamaFacts(version, info, ctx)


def ollama_env(ollama: str, version: str, machine: Machine) -> tuple[dict[str, str], str]:
    """Ollama's OLLAMA_* variables (empty when unreadable) and what we could tell."""
    if version.endswith("-sim"):
        return {}, "simulated Ollama: its slots come from `lanes simulate --lanes`"
    found = port_listeners(machine, urlsplit(ollama).port or 11434)
    env, where = ollama_environment(machine, found[1] if found else [])
    if env is None:
        return {}, f"could not read Ollama's environment ({where})"
    value = env.get("OLLAMA_NUM_PARALLEL")
    default = default_num_parallel(version)
    if not value:
        env = {**env, "OLLAMA_NUM_PARALLEL": str(default)} if default else env
        value = f"unset (so {default})" if default else "unset (chosen by Ollama)"
    return env, f"OLLAMA_NUM_PARALLEL is {value}, read from {where}"
