"""Reading JSON endpoints of the processes under test: once, timed, or sampled in the background."""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType
from typing import Any

import aiohttp

__all__ = ["Sampler", "get_json", "post_json", "timed_get"]


async def get_json(url: str) -> Any:
    """GET `url` and decode its JSON body."""
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json()


async def post_json(url: str, body: Any = None) -> Any:
    """POST `body` as JSON to `url` and decode the JSON answer."""
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        resp.raise_for_status()
        return await resp.json()


async def timed_get(session: aiohttp.ClientSession, url: str) -> tuple[float, Any]:
    """GET `url`; returns (seconds taken, decoded JSON)."""
    begin = time.monotonic()
    async with session.get(url) as resp:
        doc = await resp.json()
    return time.monotonic() - begin, doc


class Sampler:
    """Polls `url` every `interval_s` while open; `samples` holds (monotonic time, JSON)."""

    def __init__(self, url: str, interval_s: float) -> None:
        self.url = url
        self.interval_s = interval_s
        self.samples: list[tuple[float, Any]] = []
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                    async with session.get(self.url) as resp:
                        self.samples.append((time.monotonic(), await resp.json()))
                await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> Sampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
