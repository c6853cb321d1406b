"""/stats answers while a thousand requests wait, and counts them when their clients leave."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url
from tests.waiting import PATIENCE_S, wait_for

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

        async def stats_when(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
            doc = await _stats(probe, url)
            return doc if check(doc) else None

        holder = asyncio.create_task(_generate(flood, url, HOLD_TOKENS))
        await wait_for(
            lambda: stats_when(lambda d: d["lanes"]["busy"] == 1),
            timeout=PATIENCE_S,
            what="the holder to take the lane",
        )
        tasks = [asyncio.create_task(_generate(flood, url, 1)) for _ in range(QUEUED)]
        doc = await wait_for(
            lambda: stats_when(lambda d: d["queue"]["depth"] == QUEUED),
            timeout=PATIENCE_S,
            what=f"{QUEUED} requests queued",
            interval=0.05,
        )
        assert doc["queue"]["by_client"] == {"flood": QUEUED}
        assert doc["lanes"]["busy"] == 1
        assert doc["queue"]["oldest_wait_ms"] > 0
        for task in [holder, *tasks]:
            task.cancel()
        await asyncio.gather(holder, *tasks, return_exceptions=True)
        await flood.close()
        doc = await wait_for(
            lambda: stats_when(lambda d: d["queue"]["depth"] == d["lanes"]["busy"] == 0),
            timeout=PATIENCE_S,
            what="every client's departure to be counted",
            interval=0.05,
        )
    c = doc["counters"]
    assert (c["received"], c["cancelled_while_queued"], c["cancelled_while_running"]) == (
        QUEUED + 1,
        QUEUED,
        1,
    )
    assert doc["warnings"] == []
