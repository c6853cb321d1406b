"""Fixtures for the miner's tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

FINAL = {
    "model": "m",
    "message": {"role": "assistant", "content": "{}"},
    "done": True,
    "done_reason": "stop",
    "prompt_eval_count": 1200,
    "eval_count": 30,
    "eval_duration": 1_000_000,
}


@pytest.fixture(name="db")
def _db(tmp_path: Path) -> Path:
    """A fresh database path."""
    return tmp_path / "miner.db"


Step = tuple[Any, ...]
ServerFactory = Callable[[list[Step]], Awaitable[tuple[str, list[dict[str, str]]]]]


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture(name="scripted")
def _scripted(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> ServerFactory:
    """Start a server answering each request with the next scripted step; returns its URL.

    Steps: ("json", status, body[, headers]), ("text", status, text), ("drop",), ("sleep", s).
    """

    async def start(steps: list[Step]) -> tuple[str, list[dict[str, str]]]:
        script = list(steps)
        seen: list[dict[str, str]] = []

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            seen.append(dict(request.headers) | {"body": body.decode()})
            step = script.pop(0)
            if step[0] == "drop":
                assert request.transport is not None
                request.transport.close()
                await asyncio.sleep(0.05)
                return web.Response()
            if step[0] == "sleep":
                await asyncio.sleep(step[1])
                return web.json_response(FINAL)
            if step[0] == "text":
                return web.Response(status=step[1], text=step[2])
            headers = step[3] if len(step) > 3 else None
            return web.Response(
                status=step[1],
                text=json.dumps(step[2]),
                content_type="application/json",
                headers=headers,
            )

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/"), seen

    return start
