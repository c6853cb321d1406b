"""The proxy app through real sockets: pass-through routes, headers, auth and logging."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import aiohttp
import pytest

from tests.fixtures_proxy import ProxyFactory, gate_of
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory
from tests.relay.support import MODEL, RecordingRecorder, base_url, sim_model_stats
from tests.waiting import PATIENCE_S, wait_for

SECRET_PROMPT = "the-password-is-swordfish"


async def test_metadata_never_waits_behind_generations(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """With the lane busy and requests queued, metadata routes still answer at once."""
    sim = await simulator(decode_tps=50.0)
    prx = await proxy(upstream=base_url(sim), lanes=1)
    url = base_url(prx)
    body = {"model": MODEL, "prompt": "go", "options": {"num_predict": HOLD_TOKENS}}
    async with aiohttp.ClientSession() as session:
        generations = [asyncio.create_task(session.post(url + "/api/generate", json=body))]
        await wait_for(
            lambda: gate_of(prx).busy == 1, timeout=PATIENCE_S, what="the only lane to be taken"
        )
        generations += [
            asyncio.create_task(session.post(url + "/api/generate", json=body)) for _ in range(3)
        ]
        await wait_for(
            lambda: gate_of(prx).depth == 3, timeout=PATIENCE_S, what="three requests queued"
        )
        for method, path in [
            ("GET", "/"),
            ("GET", "/api/tags"),
            ("GET", "/api/ps"),
            ("GET", "/api/version"),
            ("GET", "/v1/models"),
            ("POST", "/api/show"),
        ]:
            data = {"model": MODEL} if method == "POST" else None
            async with session.request(method, url + path, json=data) as resp:
                assert resp.status == 200, path
                assert resp.headers["X-Lanes-Queue-Ms"] == "0"
        assert (gate_of(prx).busy, gate_of(prx).depth) == (1, 3)
        for task in generations:
            task.cancel()
        await asyncio.gather(*generations, return_exceptions=True)


async def test_empty_prompt_loads_without_a_lane(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """A load request (empty prompt or messages) passes while the only lane is busy."""
    sim = await simulator(decode_tps=50.0)
    recorder = RecordingRecorder()
    prx = await proxy(upstream=base_url(sim), lanes=1, recorder=recorder)
    url = base_url(prx)
    body = {"model": MODEL, "prompt": "go", "options": {"num_predict": HOLD_TOKENS}}
    async with aiohttp.ClientSession() as session:
        running = asyncio.create_task(session.post(url + "/api/generate", json=body))
        await wait_for(
            lambda: gate_of(prx).busy == 1, timeout=PATIENCE_S, what="the only lane to be taken"
        )
        for path, load in (("/api/generate", {"model": MODEL}), ("/api/chat", {"model": MODEL})):
            async with session.post(url + path, json=load) as resp:
                assert resp.status == 200
                assert (await resp.json())["done_reason"] == "load"
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert len(recorder.of("received")) == 1


async def test_response_headers_and_host_rewrite(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """Listening beyond loopback (with a token) a foreign Host passes and is rewritten for
    Ollama, which would answer it 403; status, type and X-Lanes-* come back."""
    sim = await simulator()
    prx = await proxy(upstream=base_url(sim), lanes=1, listen="0.0.0.0:0", auth_token="t0k")
    headers = {
        "Host": "proxy.example.com",
        "Authorization": "Bearer t0k",
        "X-Lanes-Client": "team-a",
        "X-Lanes-Priority": "interactive",
        "Connection": "keep-alive, X-Private",
        "X-Private": "hop-by-hop by Connection",
    }
    body = {"model": MODEL, "prompt": "hi", "options": {"num_predict": 3}}
    async with aiohttp.ClientSession() as session:
        async with session.get(base_url(sim) + "/api/tags", headers={"Host": "evil.com"}) as resp:
            assert resp.status == 403  # the simulator checks Host like Ollama does
        async with session.post(
            base_url(prx) + "/api/generate", json=body, headers=headers
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/x-ndjson"
            assert resp.headers["X-Lanes-Client"] == "team-a"
            assert int(resp.headers["X-Lanes-Queue-Ms"]) >= 0
            lines = [json.loads(line) async for line in resp.content]
    assert lines[-1]["done"] is True


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ({"X-Lanes-Client": "nightly"}, "nightly"),
        ({"User-Agent": "ollama-python/0.6.3 (x86_64 linux) Python/3.11"}, "ollama-python"),
        ({"User-Agent": ""}, "127.0.0.1"),
    ],
)
async def test_client_key_sources(
    simulator: SimulatorFactory,
    proxy: ProxyFactory,
    headers: dict[str, str],
    client: str,
) -> None:
    """The client key is X-Lanes-Client, else the User-Agent product, else the peer address."""
    sim = await simulator()
    prx = await proxy(upstream=base_url(sim))
    async with (
        aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as session,
        session.get(base_url(prx) + "/api/version", headers=headers) as resp,
    ):
        assert resp.headers["X-Lanes-Client"] == client


async def test_priority_from_header_or_config(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """X-Lanes-Priority wins; else the per-client mapping; else normal; a bad value is 400."""
    sim = await simulator()
    recorder = RecordingRecorder()
    prx = await proxy(upstream=base_url(sim), recorder=recorder, client_priorities={"ci": "batch"})
    body = {"model": MODEL, "prompt": "hi", "options": {"num_predict": 1}, "stream": False}
    cases = [
        ({"X-Lanes-Client": "ci", "X-Lanes-Priority": "Interactive"}, 200),
        ({"X-Lanes-Client": "ci"}, 200),
        ({"X-Lanes-Client": "other"}, 200),
        ({"X-Lanes-Priority": "urgent"}, 400),
    ]
    async with aiohttp.ClientSession() as session:
        for headers, status in cases:
            async with session.post(
                base_url(prx) + "/api/generate", json=body, headers=headers
            ) as r:
                assert r.status == status
    priorities = [data["priority"] for _, data in recorder.of("received")]
    assert priorities == ["interactive", "batch", "normal"]


async def test_bearer_token_is_required_when_set(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """With an auth token every request needs `Authorization: Bearer <token>`."""
    sim = await simulator()
    prx = await proxy(upstream=base_url(sim), auth_token="s3cret")
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        for auth in (None, "Bearer wrong", "s3cret"):
            headers = {"Authorization": auth} if auth else {}
            async with session.get(url + "/api/tags", headers=headers) as resp:
                assert resp.status == 401
                assert resp.headers["WWW-Authenticate"] == "Bearer"
                assert "error" in await resp.json()
        headers = {"Authorization": "Bearer s3cret"}
        async with session.get(url + "/api/tags", headers=headers) as resp:
            assert resp.status == 200


async def test_body_over_the_limit_is_413(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """A body above max_body_mb is refused in Ollama's shape before it reaches a lane."""
    sim = await simulator()
    prx = await proxy(upstream=base_url(sim), max_body_mb=1)
    body = json.dumps({"model": MODEL, "prompt": "x" * 2 * 2**20}).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(prx) + "/api/generate", data=body) as resp,
    ):
        assert resp.status == 413
        assert "max_body_mb" in (await resp.json())["error"]
    assert (await sim_model_stats(sim))["requests"] == 0


async def test_one_log_line_per_request_without_prompt_text(
    simulator: SimulatorFactory, proxy: ProxyFactory, captured_logs: list[MutableMapping[str, Any]]
) -> None:
    """Each request logs one request_finished line with its facts; prompt text never appears."""
    sim = await simulator()
    prx = await proxy(upstream=base_url(sim))
    body = {"model": MODEL, "prompt": SECRET_PROMPT, "options": {"num_predict": 5}}
    async with aiohttp.ClientSession() as session:
        url = base_url(prx) + "/api/generate"
        async with session.post(url, json=body) as resp:
            reply = await resp.read()
        async with session.post(url, data=b"{" + SECRET_PROMPT.encode()) as resp:
            assert resp.status == 400
    finished = [entry for entry in captured_logs if entry["event"] == "request_finished"]
    assert len(finished) == 2
    first = finished[0]
    assert (first["status"], first["model"], first["priority"]) == (200, MODEL, "normal")
    assert first["bytes"] == len(reply)
    assert {"client", "queue_ms", "upstream_ms"} <= set(first)
    assert SECRET_PROMPT not in repr(captured_logs)
