"""SSE progress comments through real sockets: a waiting `/v1` stream that asks hears its turn
coming, the official openai client is unharmed, and nothing else changes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx2
import openai
import pytest
from aiohttp.test_utils import TestServer

from tests.fixtures_proxy import ProxyFactory, gate_of
from tests.fixtures_sim import SimulatorFactory
from tests.relay.progress_support import (
    INTERVAL_S,
    PROGRESS,
    RecordingTransport,
    SseAnswer,
    chat,
    held_lane,
    read_until,
    start_pair,
    waited_s,
)
from tests.relay.support import MODEL, base_url
from tests.waiting import PATIENCE_S, wait_for

CHAT = "/v1/chat/completions"


async def _stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def _openai_text(
    url: str, headers: dict[str, str], transport: RecordingTransport | None = None
) -> tuple[str, str | None]:
    """Stream a chat completion with the openai client; its text and finish reason."""
    async with openai.AsyncOpenAI(
        base_url=url + "/v1",
        api_key="unused",
        max_retries=0,
        default_headers=headers,
        http_client=httpx2.AsyncClient(transport=transport or RecordingTransport()),
    ) as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Why is the sky blue?"}],
            max_tokens=12,
            seed=3,
            stream=True,
        )
        text, finish = "", None
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        return text, finish


class TestComments:
    async def test_the_openai_client_streams_through_the_comments_unharmed(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A streamed chat that waits several intervals with progress on is given comments
        before its data, and the official openai client returns from it the same completion
        as from one without progress."""
        _, prx = await start_pair(simulator, proxy)
        url, gate = base_url(prx), gate_of(prx)
        seen = RecordingTransport()
        async with held_lane(url, gate) as holder:
            waiting = asyncio.create_task(_openai_text(url, PROGRESS, seen))
            await wait_for(
                lambda: waited_s(gate, "me") >= 5 * INTERVAL_S,
                timeout=PATIENCE_S,
                what="the request waiting five intervals",
            )
            holder.cancel()
            with_progress = await waiting
        without = await _openai_text(url, {"X-Lanes-Client": "me"})
        assert seen.answer().comments_before_data() >= 2
        assert without == with_progress
        assert with_progress[0]
        assert with_progress[1] == "length"

    async def test_a_waiting_stream_hears_its_place_before_its_data(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. The lane is held and one other request waits.
        2. A streamed chat asks for progress: 200 and text/event-stream come at once, with its
           arrival position 2 in X-Lanes-Queue-Position and its client key.
        3. Comments come, the first at position 2, positions never rising, at least two
           before the first data event; then the completion, to `data: [DONE]`.
        """
        _, prx = await start_pair(simulator, proxy)
        url, gate = base_url(prx), gate_of(prx)
        async with held_lane(url, gate) as holder, aiohttp.ClientSession() as s:
            ahead_body = {"model": MODEL, "prompt": "hi", "stream": False}
            ahead = asyncio.create_task(
                s.post(url + "/api/generate", json=ahead_body, headers={"X-Lanes-Client": "a"})
            )
            await wait_for(lambda: gate.depth == 1, timeout=PATIENCE_S, what="one ahead")
            async with s.post(url + CHAT, json=chat(), headers=PROGRESS) as resp:
                answer = await read_until(resp, SseAnswer(), comments=3)
                holder.cancel()
                await read_until(resp, answer)
                status, head = resp.status, resp.headers
            assert (await ahead).status == 200
        assert status == 200
        assert head["Content-Type"] == "text/event-stream"
        assert (head["X-Lanes-Queue-Position"], head["X-Lanes-Client"]) == ("2", "me")
        assert answer.positions[0] == 2
        assert sorted(answer.positions, reverse=True) == answer.positions
        assert answer.comments_before_data() >= 2
        assert answer.data[-1] == b"[DONE]"
        assert answer.content()


async def _direct(sim: TestServer, path: str, body: dict[str, Any]) -> list[Any]:
    async with aiohttp.ClientSession() as s, s.post(base_url(sim) + path, json=body) as resp:
        return _stable(await resp.read())


_VOLATILE = {"id", "created", "created_at"}


def _stable(raw: bytes) -> list[Any]:
    """An answer's lines (SSE, NDJSON or one JSON body) without its clock and random fields;
    any line that is not JSON (a comment) stays as it is, so it cannot pass unseen."""
    rows: list[Any] = []
    for line in raw.splitlines():
        text = line.removeprefix(b"data: ")
        if not line.strip():
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            rows.append(line)
            continue
        if isinstance(doc, dict):
            doc = {
                k: v for k, v in doc.items() if k not in _VOLATILE and not k.endswith("duration")
            }
        rows.append(doc)
    return rows


class TestNoProgress:
    async def test_a_stream_that_finds_a_lane_free_is_relayed_as_it_comes(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With a lane free at once the header changes nothing: the upstream's own answer,
        line for line, with the headers of a request that never waited."""
        sim, prx = await start_pair(simulator, proxy)
        expected = await _direct(sim, CHAT, chat())
        async with (
            aiohttp.ClientSession() as s,
            s.post(base_url(prx) + CHAT, json=chat(), headers=PROGRESS) as resp,
        ):
            raw, head = await resp.read(), resp.headers
        assert expected == _stable(raw)
        assert (head["X-Lanes-Queue-Ms"], head["X-Lanes-Queue-Position"]) == ("0", "0")

    @pytest.mark.parametrize(
        ("path", "body", "headers"),
        [
            (CHAT, chat(), {"X-Lanes-Client": "me"}),
            (
                "/api/chat",
                {"model": MODEL, "messages": chat()["messages"], "options": {"num_predict": 12}},
                PROGRESS,
            ),
            (CHAT, chat(stream=False), PROGRESS),
        ],
        ids=["v1-stream-without-header", "native-stream-with-header", "v1-not-streamed"],
    )
    async def test_the_answer_is_the_upstreams_own(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        path: str,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> None:
        """Without the header, on a native NDJSON route, or with stream=false, a request that
        waited several intervals gets no comment: the upstream's answer, line for line, with
        the headers that follow a wait (X-Lanes-Queue-Ms)."""
        sim, prx = await start_pair(simulator, proxy)
        url, gate = base_url(prx), gate_of(prx)
        expected = await _direct(sim, path, body)
        async with held_lane(url, gate) as holder, aiohttp.ClientSession() as s:
            waiting = asyncio.create_task(s.post(url + path, json=body, headers=headers))
            await wait_for(
                lambda: waited_s(gate, "me") >= 5 * INTERVAL_S,
                timeout=PATIENCE_S,
                what="the request waiting five intervals",
            )
            holder.cancel()
            async with await waiting as resp:
                raw, head = await resp.read(), resp.headers
        assert expected == _stable(raw)
        assert int(head["X-Lanes-Queue-Ms"]) > 0
        assert head["X-Lanes-Queue-Position"] == "1"
