"""Helpers for the SSE progress tests: a lane held on purpose, SSE answers read line by line."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
from aiohttp.test_utils import TestServer

from proxy.relay.gate import LaneGate
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory
from tests.relay.support import MODEL, base_url
from tests.waiting import PATIENCE_S, wait_for

__all__ = [
    "INTERVAL_S",
    "PROGRESS",
    "RecordingTransport",
    "SseAnswer",
    "chat",
    "held_lane",
    "read_until",
    "start_pair",
    "waited_s",
]

INTERVAL_S = 0.05  # progress_interval_s in these tests: many comments in a short wait
PROGRESS = {"X-Lanes-Progress": "sse", "X-Lanes-Client": "me"}


def chat(*, stream: bool = True, model: str = MODEL) -> dict[str, Any]:
    """A small chat completion; the simulator answers it the same way every time."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "max_tokens": 12,
        "seed": 3,
        "stream": stream,
    }


async def _hold(session: aiohttp.ClientSession, url: str) -> None:
    body = {"model": MODEL, "prompt": "go", "options": {"num_predict": HOLD_TOKENS}}
    headers = {"X-Lanes-Client": "holder"}
    async with session.post(url + "/api/generate", json=body, headers=headers) as resp:
        async for _ in resp.content:
            pass


@contextlib.asynccontextmanager
async def held_lane(url: str, gate: LaneGate) -> AsyncIterator[asyncio.Task[None]]:
    """The proxy's one lane, held by a long generate until the yielded task is cancelled
    (which hangs up, so the lane goes to the next request)."""
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(_hold(session, url))
        try:
            await wait_for(lambda: gate.busy == 1, timeout=PATIENCE_S, what="the held lane")
            yield task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def waited_s(gate: LaneGate, client: str) -> float:
    """How long `client`'s queued request has waited so far (0 if none is queued)."""
    now = gate.clock()
    return max(
        (
            now - row.ticket.enqueued_at
            for row in gate.queue.waiting()
            if row.ticket.client == client
        ),
        default=0.0,
    )


@dataclass
class SseAnswer:
    """An SSE answer as read so far: its comment lines and its `data:` events, in order."""

    lines: list[bytes] = field(default_factory=list)  # every non-blank line

    @property
    def comments(self) -> list[bytes]:
        return [line for line in self.lines if line.startswith(b":")]

    @property
    def positions(self) -> list[int]:
        """The `position=` of every comment."""
        return [int(dict(_fields(c))["position"]) for c in self.comments]

    @property
    def data(self) -> list[bytes]:
        return [line[len(b"data: ") :] for line in self.lines if line.startswith(b"data: ")]

    def comments_before_data(self) -> int:
        firsts = [i for i, line in enumerate(self.lines) if line.startswith(b"data: ")]
        return len([line for line in self.lines[: firsts[0]] if line.startswith(b":")])

    def content(self) -> str:
        """The completion's text, from the chunks' deltas."""
        chunks = [json.loads(d) for d in self.data if d != b"[DONE]"]
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )


def _fields(line: bytes) -> list[tuple[str, str]]:
    words = line.decode().removeprefix(":").split()[1:]  # after "queued"
    return [(k, v) for k, _, v in (w.partition("=") for w in words)]


async def read_until(
    resp: aiohttp.ClientResponse, answer: SseAnswer, *, comments: int | None = None
) -> SseAnswer:
    """Read lines into `answer` until it holds `comments` comments, or to the end (None)."""
    async with asyncio.timeout(PATIENCE_S):
        while comments is None or len(answer.comments) < comments:
            line = await resp.content.readline()
            if not line:
                if comments is not None:
                    raise AssertionError(f"the answer ended after {answer.lines!r}")
                return answer
            if line.strip():
                answer.lines.append(line.rstrip(b"\n"))
    return answer


class _Tee(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, sink: bytearray) -> None:
        self._inner, self._sink = inner, sink

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._sink.extend(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingTransport(httpx2.AsyncBaseTransport):
    """The openai client's own HTTP transport, keeping a copy of every body byte it reads, so a
    test sees what the client was given as well as what it made of it."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self.received = bytearray()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, self.received),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()

    def answer(self) -> SseAnswer:
        """What the client received, as lines."""
        lines = [line for line in bytes(self.received).splitlines() if line.strip()]
        return SseAnswer(lines)


async def start_pair(
    simulator: SimulatorFactory, proxy: ProxyFactory, **settings: Any
) -> tuple[TestServer, TestServer]:
    """A one-slot simulator and a one-lane proxy in front of it that sends progress comments
    every INTERVAL_S; `settings` are the proxy's others."""
    sim = await simulator(lanes=1)
    prx = await proxy(base_url(sim), lanes=1, progress_interval_s=INTERVAL_S, **settings)
    return sim, prx
