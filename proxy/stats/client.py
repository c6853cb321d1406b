"""A client of a running proxy's `/stats`: what `lanes stats`, `lanes top` and the doctor read."""

from __future__ import annotations

from typing import Any

import aiohttp

from proxy.ollama_state import OllamaError, get_json

__all__ = ["StatsUnavailable", "fetch_queue", "fetch_stats"]


class StatsUnavailable(Exception):
    """The proxy's `/stats` did not answer as expected; the message is one human line."""


async def fetch_stats(
    url: str,
    *,
    token: str | None = None,
    timeout_s: float = 5.0,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, Any]:
    """The proxy's `/stats` document (`url` is the proxy's base URL)."""
    return await _fetch(url, "/stats", "lanes", token, timeout_s, session)


async def fetch_queue(
    url: str,
    *,
    token: str | None = None,
    timeout_s: float = 5.0,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, Any]:
    """The proxy's `/queue` document: the waiting requests in projected order."""
    return await _fetch(url, "/queue", "waiting", token, timeout_s, session)


async def _fetch(
    url: str,
    path: str,
    key: str,
    token: str | None,
    timeout_s: float,
    session: aiohttp.ClientSession | None,
) -> dict[str, Any]:
    target = f"{url.rstrip('/')}{path}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        if session is None:
            async with aiohttp.ClientSession() as own:
                doc = await get_json(own, target, headers=headers, timeout_s=timeout_s)
        else:
            doc = await get_json(session, target, headers=headers, timeout_s=timeout_s)
    except OllamaError as exc:
        raise StatsUnavailable(str(exc)) from None
    if not isinstance(doc, dict) or key not in doc:
        raise StatsUnavailable(f"{target} did not return ollama-lanes statistics")
    return doc
