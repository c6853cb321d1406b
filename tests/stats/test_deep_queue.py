"""/stats answers while a thousand requests wait, and counts them when their clients leave."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url

QUEUED = 1000


async def _generate(session: aiohttp.ClientSession, url: str, num_predict: int) -> None:
    body = {"model": "llama3.2", "prompt": "hi", "options": {"num_predict": num_predict}}
    headers = {"X-Lanes-Client": "flood"}
    async with session.post(url + "/api/generate", json=body, headers=headers) as resp:
        await resp.read()


async def _stats(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def test_stats_with_a_deep_queue(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """1. One long request holds the only lane. 2. A thousand more queue behind it.
    3. /stats answers with the full queue. 4. The clients leave: all are counted as
    cancelled while queued (or running, for the one on the lane)."""
    sim = await simulator(decode_tps=50.0)
    prx = await proxy(base_url(sim), lanes=1)
    url = base_url(prx)
    flood = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    async with aiohttp.ClientSession() as probe:
        holder = asyncio.create_task(_generate(flood, url, 2000))
        for _ in range(400):
            if (await _stats(probe, url))["lanes"]["busy"] == 1:
                break
            await asyncio.sleep(0.02)
        tasks = [asyncio.create_task(_generate(flood, url, 1)) for _ in range(QUEUED)]
        for _ in range(400):
            doc = await _stats(probe, url)
            if doc["queue"]["depth"] == QUEUED:
                break
            await asyncio.sleep(0.05)
        assert doc["queue"]["depth"] == QUEUED
        assert doc["queue"]["by_client"] == {"flood": QUEUED}
        assert doc["lanes"]["busy"] == 1
        assert doc["queue"]["oldest_wait_ms"] > 0
        for task in [holder, *tasks]:
            task.cancel()
        await asyncio.gather(holder, *tasks, return_exceptions=True)
        await flood.close()
        for _ in range(400):
            doc = await _stats(probe, url)
            if doc["queue"]["depth"] == 0 and doc["lanes"]["busy"] == 0:
                break
            await asyncio.sleep(0.05)
    c = doc["counters"]
    assert (c["received"], c["cancelled_while_queued"], c["cancelled_while_running"]) == (
        QUEUED + 1,
        QUEUED,
        1,
    )
    assert doc["warnings"] == []
