"""Small HTTP helpers shared by the simulator tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.fixtures_sim import base_url, sim_stats
from tests.waiting import PATIENCE_S, wait_for

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
    server: TestServer, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Poll /_sim/stats until `check` holds; returns that document (fails naming `what`)."""

    async def holds() -> dict[str, Any] | None:
        stats = await sim_stats(server)
        return stats if check(stats) else None

    found: dict[str, Any] | None = await wait_for(holds, timeout=PATIENCE_S, what=what)
    assert found is not None
    return found
