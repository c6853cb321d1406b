"""A load generator for tests: workers that each keep one request in flight through a proxy."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp

__all__ = ["Load", "Worker", "generate"]

MODEL = "qwen2.5:7b-instruct"


def generate(words: int = 20, num_predict: int = 40, **options: Any) -> dict[str, Any]:
    """An /api/generate body: a prompt of `words` words (5 characters each) and its options."""
    prompt = " ".join(["word"] * words)
    return {"model": MODEL, "prompt": prompt, "options": {"num_predict": num_predict, **options}}


@dataclass(frozen=True)
class Worker:
    """One client of the load: its key and the body it sends, one request after another."""

    client: str
    body: dict[str, Any] = field(default_factory=generate)


class Load:
    """`async with Load(url) as load: load.start(Worker("miner"), 4)`; stops its workers on exit.

    A slow client is one worker; a busy one is many. `completed` counts finished requests.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.completed = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Load:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def start(self, worker: Worker, count: int = 1) -> None:
        """Start `count` more workers like `worker`."""
        for _ in range(count):
            self._tasks.append(asyncio.create_task(self._run(worker)))

    async def _run(self, worker: Worker) -> None:
        assert self._session is not None, "use Load in `async with`"
        head = {"X-Lanes-Client": worker.client}
        while not self._stop.is_set():
            async with self._session.post(
                self.url + "/api/generate", json=worker.body, headers=head
            ) as resp:
                assert resp.status == 200, await resp.text()
                async for _ in resp.content.iter_any():
                    pass
            self.completed += 1
