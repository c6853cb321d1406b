"""Limits and trouble through real sockets: 503s, bodies, bad input, upstream failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.simulator.app import create_app as create_simulator
from tests.fixtures_proxy import ProxyFactory, gate_of
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, sim_settings
from tests.ports import reserved_port
from tests.relay.support import MODEL, RecordingRecorder, base_url, sim_model_stats
from tests.waiting import PATIENCE_S, wait_for

CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}


def slow_generate(tokens: int = HOLD_TOKENS) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "go", "options": {"num_predict": tokens}}


async def occupy(session: aiohttp.ClientSession, url: str, prx: TestServer) -> asyncio.Task[int]:
    """Start one slow generate and return once it holds the proxy's only lane."""

    async def run() -> int:
        async with session.post(url + "/api/generate", json=slow_generate()) as resp:
            await resp.read()
            return resp.status

    task = asyncio.create_task(run())
    await wait_for(
        lambda: gate_of(prx).busy == 1, timeout=PATIENCE_S, what="the only lane to be taken"
    )
    return task


@pytest.mark.parametrize(
    ("path", "body", "shape"),
    [
        ("/api/chat", CHAT, "ollama"),
        ("/v1/chat/completions", {"model": MODEL, "messages": CHAT["messages"]}, "openai"),
    ],
)
async def test_full_queue_answers_503_with_retry_after(
    simulator: SimulatorFactory, proxy: ProxyFactory, path: str, body: Any, shape: str
) -> None:
    """Past max_queue: 503, an integer Retry-After >= 1, the error in the route's own shape."""
    sim = await simulator(decode_tps=50.0)
    prx = await proxy(upstream=base_url(sim), lanes=1, max_queue=1)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        running = await occupy(session, url, prx)
        queued = asyncio.create_task(session.post(url + path, json=body))
        await wait_for(
            lambda: gate_of(prx).depth == 1, timeout=PATIENCE_S, what="one request queued"
        )
        async with session.post(url + path, json=body) as resp:
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
            error = (await resp.json())["error"]
        running.cancel()
        queued.cancel()
        await asyncio.gather(running, queued, return_exceptions=True)
    if shape == "ollama":
        assert error.startswith("server busy, please try again.")
    else:
        assert error["type"] == "api_error"
        assert error["message"].startswith("server busy, please try again.")
        assert (error["param"], error["code"]) == (None, None)


async def test_wait_limit_per_class_answers_503(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """A batch request that waits past max_wait_batch_s gets the same 503; others still wait."""
    sim = await simulator(decode_tps=100.0)
    recorder = RecordingRecorder()
    prx = await proxy(upstream=base_url(sim), lanes=1, max_wait_batch_s=0.2, recorder=recorder)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        running = await occupy(session, url, prx)
        headers = {"X-Lanes-Priority": "batch"}
        async with session.post(url + "/api/chat", json=CHAT, headers=headers) as resp:
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            assert int(resp.headers["X-Lanes-Queue-Ms"]) >= 200
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    rejected = [d["reason"] for _, d in recorder.of("finished") if d["outcome"] == "rejected"]
    assert rejected == ["queue_timeout"]


async def recording_upstream(aiohttp_server: AiohttpServer) -> TestServer:
    """A stand-in Ollama that reports how many body bytes it received."""

    async def chat(request: web.Request) -> web.Response:
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
        return web.json_response({"model": MODEL, "received": size, "done": True})

    app = web.Application()
    app.router.add_post("/api/chat", chat)
    server: TestServer = await aiohttp_server(app)
    return server


async def test_hundred_mib_body_passes(aiohttp_server: AiohttpServer, proxy: ProxyFactory) -> None:
    """A 100 MiB request body (base64 images) reaches the upstream whole."""
    upstream = await recording_upstream(aiohttp_server)
    prx = await proxy(upstream=base_url(upstream), lanes=1)
    image = "A" * (100 * 2**20)
    message = {"role": "user", "content": "describe", "images": [image]}
    body = json.dumps({"model": MODEL, "messages": [message]}).encode()
    del image, message
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(prx) + "/api/chat", data=body) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["received"] == len(body)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/generate", b'{"model": "x", "prompt": ', {"error": "invalid JSON"}),
        ("/api/chat", b"", {"error": "missing request body"}),
        ("/v1/chat/completions", b"[1, 2]", {"error": {"type": "invalid_request_error"}}),
    ],
)
async def test_bad_json_is_400_without_a_lane(
    simulator: SimulatorFactory, proxy: ProxyFactory, path: str, body: bytes, expected: Any
) -> None:
    """Invalid JSON gets 400 in the route's shape, and neither a lane nor the upstream sees it."""
    sim = await simulator()
    recorder = RecordingRecorder()
    prx = await proxy(upstream=base_url(sim), recorder=recorder)
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(prx) + path, data=body) as resp,
    ):
        assert resp.status == 400
        error = (await resp.json())["error"]
    if isinstance(error, dict):
        assert error["type"] == expected["error"]["type"]
    else:
        assert error.startswith(expected["error"])
    assert recorder.events == []
    assert (await sim_model_stats(sim))["requests"] == 0


async def test_unknown_model_gets_ollamas_own_404(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """A model Ollama does not know passes through: same status, same body."""
    sim = await simulator()
    prx = await proxy(upstream=base_url(sim))
    body = {"model": "nope:1b", "prompt": "hi"}
    async with aiohttp.ClientSession() as session:
        async with session.post(base_url(sim) + "/api/generate", json=body) as resp:
            expected = (resp.status, await resp.read())
        async with session.post(base_url(prx) + "/api/generate", json=body) as resp:
            assert (resp.status, await resp.read()) == expected
    assert expected[0] == 404


async def test_upstream_down_then_back(aiohttp_server: AiohttpServer, proxy: ProxyFactory) -> None:
    """While Ollama is down: 502 naming the upstream; once it is back, requests succeed."""
    with reserved_port() as port:
        await _down_then_back(aiohttp_server, proxy, port)


async def _down_then_back(aiohttp_server: AiohttpServer, proxy: ProxyFactory, port: int) -> None:
    upstream = f"http://127.0.0.1:{port}"
    prx = await proxy(upstream=upstream, lanes=1)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        for path, body in (("/api/chat", CHAT), ("/v1/chat/completions", CHAT)):
            async with session.post(url + path, json=body) as resp:
                assert resp.status == 502
                assert upstream in await resp.text()
        async with session.get(url + "/api/tags") as resp:
            assert resp.status == 502
        assert gate_of(prx).busy == 0
        await aiohttp_server(create_simulator(sim_settings()), port=port)
        async with session.post(url + "/api/chat", json=CHAT) as resp:
            assert resp.status == 200
            assert (await resp.json())["done"] is True


async def test_no_first_byte_in_time_is_504(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """An upstream that sends nothing before the first-byte timeout gets 504 naming it."""
    sim = await simulator(fault_hang_s=5.0, fault_hang_rate=1.0)
    recorder = RecordingRecorder()
    prx = await proxy(upstream=base_url(sim), timeout_first_byte_s=0.2, recorder=recorder)
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(prx) + "/api/chat", json=CHAT) as resp,
    ):
        assert resp.status == 504
        assert base_url(sim) in (await resp.json())["error"]
    assert [d["outcome"] for _, d in recorder.of("finished")] == ["failed"]
    assert gate_of(prx).busy == 0


@pytest.mark.parametrize(
    ("path", "body", "last_line"),
    [
        ("/api/generate", slow_generate(50), b'{"error":'),
        (
            "/v1/chat/completions",
            {"model": MODEL, "messages": CHAT["messages"], "stream": True},
            b'data: {"error":',
        ),
    ],
)
@pytest.mark.parametrize("fault", ["drop", "idle"])
async def test_failure_mid_stream_ends_with_an_error_line(
    simulator: SimulatorFactory,
    proxy: ProxyFactory,
    path: str,
    body: Any,
    last_line: bytes,
    fault: str,
    captured_logs: list[MutableMapping[str, Any]],
) -> None:
    """When the upstream drops or stalls mid-stream, the stream ends with an error, status 200."""
    faults: dict[str, Any] = (
        {"fault_drop_after_chunks": 2, "fault_drop_rate": 1.0}
        if fault == "drop"
        else {"decode_tps": 2.0}
    )
    sim = await simulator(**faults)
    prx = await proxy(upstream=base_url(sim), timeout_idle_s=0.3)
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(prx) + path, json=body) as resp,
    ):
        assert resp.status == 200
        lines = [line async for line in resp.content if line.strip()]
    assert lines[-1].startswith(last_line)
    assert b"[DONE]" not in b"".join(lines)
    assert "upstream_failed_mid_stream" in [entry["event"] for entry in captured_logs]
    await wait_for(lambda: gate_of(prx).busy == 0, timeout=PATIENCE_S, what="every lane to be free")
