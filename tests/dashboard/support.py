"""Helpers for the dashboard's socket tests: reading the SSE feed, holding lanes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.fixtures_sim import HOLD_TOKENS

__all__ = ["MODEL", "events", "generate", "hold"]

MODEL = "llama3.2:latest"


async def events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The (event name, parsed data) pairs of an open `text/event-stream` answer."""
    name = "message"
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield name, json.loads(line.removeprefix("data: "))
            name = "message"


async def generate(
    session: aiohttp.ClientSession,
    url: str,
    *,
    client: str,
    priority: str = "normal",
    tokens: int = HOLD_TOKENS,
    headers: dict[str, str] | None = None,
) -> int:
    """One /api/generate through the proxy as `client`; its status once it ends."""
    body = {"model": MODEL, "prompt": "x", "options": {"num_predict": tokens}}
    sent = {"X-Lanes-Client": client, "X-Lanes-Priority": priority} | (headers or {})
    async with session.post(url + "/api/generate", json=body, headers=sent) as resp:
        await resp.read()
        return resp.status


def hold(
    session: aiohttp.ClientSession, url: str, client: str, priority: str = "normal", **kw: Any
) -> asyncio.Task[int]:
    """A request that holds (or waits for) a lane until the test cancels its task."""
    return asyncio.create_task(generate(session, url, client=client, priority=priority, **kw))
