"""Each Ollama-aware warning, triggered by a simulator scenario through the proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats

MODEL = "qwen2.5:7b-instruct"


async def _generate(session: aiohttp.ClientSession, url: str, prompt: str, **options: Any) -> None:
    body = {"model": MODEL, "prompt": prompt, "options": options}
    async with session.post(f"{url}/api/generate", json=body) as resp:
        assert resp.status == 200
        async for _ in resp.content:
            pass


async def _warnings(url: str) -> dict[str, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
    return {w["kind"]: w for w in doc["warnings"]}


async def test_truncation(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """A 1000-token prompt with num_ctx 512 is cut by Ollama; /stats says so, once."""
    sim = await simulator()
    prx = await proxy(base_url(sim), lanes=1)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        await _generate(session, url, "word " * 200, num_ctx=512, num_predict=5)
        assert await _warnings(url) == {}
        await _generate(session, url, "word " * 800, num_ctx=512, num_predict=5)
    found = await _warnings(url)
    assert list(found) == ["prompt_truncated"]
    assert found["prompt_truncated"]["count"] == 1
    assert "num_ctx 512" in found["prompt_truncated"]["latest"]
    assert "word" not in found["prompt_truncated"]["latest"]  # never prompt text


async def test_reload_from_mixed_num_ctx(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """Clients alternating num_ctx make Ollama reload; the warning names the option."""
    sim = await simulator(load_seconds=0.3)
    prx = await proxy(base_url(sim), lanes=1, reload_warn_ms=150.0)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            await _generate(session, url, "hello there", num_ctx=2048, num_predict=3)
        assert await _warnings(url) == {}  # a cold load and a warm request
        await _generate(session, url, "hello there", num_ctx=4096, num_predict=3)
        await _generate(session, url, "hello there", num_ctx=2048, num_predict=3)
    assert (await sim_stats(sim))["models"][MODEL]["reloads"] == 2
    found = await _warnings(url)
    assert list(found) == ["model_reloaded"]
    assert found["model_reloaded"]["count"] == 2
    assert "num_ctx 4096 → 2048" in found["model_reloaded"]["latest"]


async def test_more_lanes_than_ollama_slots(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """Four proxy lanes over one Ollama slot: requests queue inside Ollama, and it shows."""
    sim = await simulator(lanes=1, decode_tps=400.0)
    prx = await proxy(base_url(sim), lanes=4, upstream_queue_warn_ms=300.0)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        await _generate(session, url, "warm up", num_predict=2)
        await asyncio.gather(*(_generate(session, url, "go", num_predict=200) for _ in range(4)))
    assert (await sim_stats(sim))["models"][MODEL]["max_in_flight"] == 1
    found = await _warnings(url)
    assert list(found) == ["upstream_queueing"]
    assert found["upstream_queueing"]["count"] >= 2
