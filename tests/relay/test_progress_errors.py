"""SSE progress through real sockets when things go wrong: errors after the early 200 reach the
client as one SSE error event, the statistics stay true, and a client that leaves holds nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai

from tests.fixtures_proxy import ProxyFactory, gate_of
from tests.fixtures_sim import SimulatorFactory
from tests.relay.progress_support import (
    INTERVAL_S,
    PROGRESS,
    SseAnswer,
    chat,
    held_lane,
    read_until,
    start_pair,
)
from tests.relay.support import MODEL, base_url
from tests.waiting import PATIENCE_S, wait_for

CHAT = "/v1/chat/completions"
HANG = "hang:latest"  # a simulated model that never answers


async def _counters(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        counters: dict[str, Any] = doc["counters"]
        return counters


async def _openai_stream(url: str, model: str = MODEL) -> tuple[str, openai.APIError]:
    """Stream a chat with progress on; where it raised (`create` or `iterate`) and the error."""
    async with openai.AsyncOpenAI(
        base_url=url + "/v1", api_key="unused", max_retries=0, default_headers=PROGRESS
    ) as client:
        try:
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "Why is the sky blue?"}],
                max_tokens=12,
                stream=True,
            )
        except openai.APIError as exc:
            return "create", exc
        try:
            async for _ in stream:
                pass
        except openai.APIError as exc:
            return "iterate", exc
    raise AssertionError("the stream ended without an error")


class TestProxyErrors:
    async def test_a_queue_timeout_after_comments_is_an_error_the_openai_client_raises(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A stream that waits past max_wait_normal_s with progress on has had its 200: the
        openai client raises the queue timeout as an APIError while iterating, and /stats
        counts a rejection for queue_timeout."""
        _, prx = await start_pair(simulator, proxy, max_wait_normal_s=10 * INTERVAL_S)
        url, gate = base_url(prx), gate_of(prx)
        async with held_lane(url, gate):
            where, error = await _openai_stream(url)
            counters = await _counters(url)
        assert where == "iterate"
        assert "no lane freed within 0.5 s" in error.message
        assert (counters["rejected"], counters["rejected_by_reason"]) == (1, {"queue_timeout": 1})

    async def test_an_error_after_comments_is_one_event_and_the_end(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """After the comments, a queue timeout is exactly one `data:` event in OpenAI's error
        envelope, then the stream ends (no `[DONE]`)."""
        _, prx = await start_pair(simulator, proxy, max_wait_normal_s=10 * INTERVAL_S)
        url, gate = base_url(prx), gate_of(prx)
        async with (
            held_lane(url, gate),
            aiohttp.ClientSession() as s,
            s.post(url + CHAT, json=chat(), headers=PROGRESS) as resp,
        ):
            answer = await read_until(resp, SseAnswer())
        assert len(answer.comments) >= 2
        assert [line for line in answer.lines if not line.startswith(b":")] == answer.lines[-1:]
        [event] = answer.data
        assert json.loads(event) == {
            "error": {
                "message": "server busy, please try again.  no lane freed within 0.5 s",
                "type": "api_error",
                "param": None,
                "code": None,
            }
        }

    async def test_a_drain_while_waiting_is_an_error_event(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A proxy that stops while the stream waits ends it with the draining error as an
        event; /stats counts a rejection for draining."""
        _, prx = await start_pair(simulator, proxy)
        url, gate = base_url(prx), gate_of(prx)
        async with held_lane(url, gate), aiohttp.ClientSession() as s:
            async with s.post(url + CHAT, json=chat(), headers=PROGRESS) as resp:
                answer = await read_until(resp, SseAnswer(), comments=2)
                gate.close()
                await read_until(resp, answer)
            counters = await _counters(url)
        [event] = answer.data
        assert json.loads(event)["error"]["message"] == "the proxy is shutting down"
        assert counters["rejected_by_reason"] == {"draining": 1}


class TestUpstreamErrors:
    async def test_an_unknown_model_after_waiting_is_an_error_event(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """An upstream 404 for an unknown model, after comments, reaches the openai client as
        an APIError naming the model, and /stats counts a failure http_404."""
        _, prx = await start_pair(simulator, proxy)
        url, gate = base_url(prx), gate_of(prx)
        async with held_lane(url, gate) as holder:
            waiting = asyncio.create_task(_openai_stream(url, model="missing-model"))
            await wait_for(lambda: gate.depth == 1, timeout=PATIENCE_S, what="it waits")
            holder.cancel()
            where, error = await waiting
        counters = await _counters(url)
        assert where == "iterate"
        assert "missing-model" in error.message
        assert counters["failed_by_reason"] == {"http_404": 1}

    async def test_an_upstream_that_never_answers_after_waiting_is_an_error_event(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """An upstream that sends nothing within timeout_first_byte_s after the wait: the
        openai client raises the proxy's 504 message as an APIError, /stats counts a failure
        upstream_timeout."""
        sim = await simulator(lanes=1, models=[{"name": MODEL}, {"name": HANG, "fault_hang_s": 60}])
        prx = await proxy(
            base_url(sim), lanes=1, progress_interval_s=INTERVAL_S, timeout_first_byte_s=0.5
        )
        url, gate = base_url(prx), gate_of(prx)
        async with held_lane(url, gate) as holder:
            waiting = asyncio.create_task(_openai_stream(url, model=HANG))
            await wait_for(lambda: gate.depth == 1, timeout=PATIENCE_S, what="it waits")
            holder.cancel()
            where, error = await waiting
        counters = await _counters(url)
        assert where == "iterate"
        assert "sent no response within 0.5 s" in error.message
        assert counters["failed_by_reason"] == {"upstream_timeout": 1}


class TestLeaving:
    async def test_a_client_that_leaves_while_waiting_is_withdrawn(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A client that hangs up after two comments leaves the queue: the depth is 0 again,
        /stats counts it cancelled while queued, and the lane serves the next request."""
        _, prx = await start_pair(simulator, proxy)
        url, gate = base_url(prx), gate_of(prx)
        async with held_lane(url, gate) as holder, aiohttp.ClientSession() as s:
            async with s.post(url + CHAT, json=chat(), headers=PROGRESS) as resp:
                await read_until(resp, SseAnswer(), comments=2)
                resp.close()
            await wait_for(lambda: gate.depth == 0, timeout=PATIENCE_S, what="it left the queue")
            holder.cancel()
            await wait_for(lambda: gate.busy == 0, timeout=PATIENCE_S, what="the lane freed")
            async with s.post(url + CHAT, json=chat(stream=False)) as after:
                assert after.status == 200
        counters = await _counters(url)
        assert counters["cancelled_while_queued"] == 1
        assert gate.busy == 0
