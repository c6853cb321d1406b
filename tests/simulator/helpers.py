"""Small HTTP helpers shared by the simulator tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.fixtures_sim import base_url, sim_stats

__all__ = ["post_json", "read_ndjson", "wait_for_stats"]


async def post_json(
    session: aiohttp.ClientSession, server: TestServer, path: str, body: Any
) -> tuple[int, str]:
    """POST a JSON body; returns (status, body text)."""
    async with session.post(base_url(server) + path, json=body) as resp:
        return resp.status, await resp.text()


def read_ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


async def wait_for_stats(
    server: TestServer, check: Callable[[dict[str, Any]], bool], limit_s: float = 10.0
) -> dict[str, Any]:
    """Poll /_sim/stats until `check` holds (generous timeout: the machine is shared)."""
    async with asyncio.timeout(limit_s):
        while True:
            stats = await sim_stats(server)
            if check(stats):
                return stats
            await asyncio.sleep(0.01)
