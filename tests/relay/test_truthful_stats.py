"""Statistics stay true with several hosts, retries, and error answers (through real sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.relay.app import GATE, LEDGER
from proxy.stats.warnings import IdleWatch
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url, sim_stats
from tests.relay.support import RecordingRecorder
from tests.waiting import PATIENCE_S, wait_for

A, B = "llama3.2:latest", "qwen2.5:7b-instruct"
QUICK = {"health_interval_s": 0.1}


def _spec(name: str, server: TestServer, lanes: int) -> dict[str, Any]:
    return {"name": name, "url": base_url(server), "lanes": lanes}


async def _stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def _generate(session: aiohttp.ClientSession, url: str, model: str, tokens: int = 5) -> int:
    body = {"model": model, "prompt": "hi", "options": {"num_predict": tokens}}
    async with session.post(url + "/api/generate", json=body) as resp:
        await resp.read()
        return resp.status


class TestSeveralHosts:
    async def test_a_host_without_the_model_raises_no_idle_lane_warning(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. x has model A, y has only B; x has 1 lane, y has 2.
        2. Five requests for A: one runs on x, four wait, y's lanes stay free.
        3. For well over the 1 s grace, /stats raises no lanes_idle_with_queue, and lists
           both hosts with their own busy lanes and the queue x (alone) could serve.
        """
        x = await simulator(lanes=1, models=[{"name": A}], decode_tps=50.0)
        y = await simulator(lanes=2, models=[{"name": B}])
        prx = await proxy(base_url(x), upstreams=[_spec("x", x, 1), _spec("y", y, 2)], **QUICK)
        url, gate, ledger = base_url(prx), prx.app[GATE], prx.app[LEDGER]
        queue = gate.queue
        await wait_for(
            lambda: None not in (queue.host("x").installed, queue.host("y").installed),
            timeout=PATIENCE_S,
            what="both hosts' model lists",
        )
        async with aiohttp.ClientSession() as s:
            tasks = [asyncio.create_task(_generate(s, url, A, HOLD_TOKENS)) for _ in range(5)]
            await wait_for(lambda: gate.depth == 4, timeout=PATIENCE_S, what="4 requests queued")
            start = ledger.clock()
            grace = 2 * IdleWatch().grace_s

            def watched_past_the_grace() -> bool:  # the background watch's own observations
                return (ledger.queue_checked_at or 0.0) >= start + grace

            await wait_for(watched_past_the_grace, timeout=PATIENCE_S, what="2 graces observed")
            doc = await _stats(url)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert [w["kind"] for w in doc["warnings"]] == []
        rows = doc["upstreams"]
        assert {n: (r["lanes"], r["busy"], r["queued"]) for n, r in rows.items()} == {
            "x": (1, 1, 4),
            "y": (2, 0, 0),
        }
        assert [row["upstream"] for row in doc["lanes"]["running"]] == ["x"]

    async def test_each_host_reports_what_its_own_poll_saw(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Each host's row has its own version answer and its own loaded models."""
        x = await simulator(models=[{"name": A}])
        y = await simulator(models=[{"name": B}])
        prx = await proxy(base_url(x), upstreams=[_spec("x", x, 1), _spec("y", y, 1)], **QUICK)
        url = base_url(prx)
        async with aiohttp.ClientSession() as s:
            assert await _generate(s, url, A) == 200
            assert await _generate(s, url, B) == 200

        async def both_loaded() -> dict[str, Any] | None:
            doc = await _stats(url)
            rows = doc["upstreams"]
            ok = all(rows[n]["loaded_models"] for n in ("x", "y"))
            return doc if ok else None

        doc = await wait_for(both_loaded, timeout=PATIENCE_S, what="both hosts polled with models")
        rows = doc["upstreams"]
        assert [m["name"] for m in rows["x"]["loaded_models"]] == [A]
        assert [m["name"] for m in rows["y"]["loaded_models"]] == [B]
        assert rows["x"]["reachable"]
        assert rows["y"]["reachable"]
        assert {m["name"] for m in doc["upstream"]["loaded_models"]} == {A, B}


def _refusing_host() -> web.Application:
    """An Ollama stand-in that answers its model lists but hangs up on every inference."""

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": "0.33.0"})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": A, "model": A}]})

    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/ps", models)
    app.router.add_get("/api/tags", models)
    app.router.add_post("/api/generate", hang_up)
    return app


class TestRetry:
    async def test_a_retry_reports_its_new_lane(
        self,
        aiohttp_server: AiohttpServer,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
    ) -> None:
        """1. x hangs up on every generate; y is a simulator; both have model A loaded.
        2. Requests go to x and y in turn; the one bound to x is retried on y.
        3. The recorder hears two admissions for it, x then y, and one completion; while it
           runs, /stats shows its lane on y.
        """
        x = await aiohttp_server(_refusing_host())
        y = await simulator(lanes=2, decode_tps=50.0)
        recorder = RecordingRecorder()
        prx = await proxy(
            base_url(y),
            upstreams=[_spec("x", x, 1), _spec("y", y, 2)],
            recorder=recorder,
            breaker_failures=10,
            **QUICK,
        )
        url, gate = base_url(prx), prx.app[GATE]
        await wait_for(
            lambda: gate.queue.host("x").installed is not None,
            timeout=PATIENCE_S,
            what="x's model list",
        )
        async with aiohttp.ClientSession() as s:
            tasks = [asyncio.create_task(_generate(s, url, A, HOLD_TOKENS)) for _ in range(2)]

            def moved() -> int | None:
                hosts: dict[int, list[str]] = {}
                for rid, data in recorder.of("admitted"):
                    hosts.setdefault(rid, []).append(data["host"])
                return next((rid for rid, h in hosts.items() if h == ["x", "y"]), None)

            rid = await wait_for(moved, timeout=PATIENCE_S, what="a request moved from x to y")
            await wait_for(lambda: gate.busy == 2, timeout=PATIENCE_S, what="both lanes on y")
            doc = await _stats(url)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert sorted(row["upstream"] for row in doc["lanes"]["running"]) == ["y", "y"]
        assert (await sim_stats(y))["models"][A]["requests"] >= 2
        assert rid is not None
        assert recorder.endings()[rid] == ["cancelled"]


class TestOneOutcome:
    async def test_a_relayed_500_is_a_failure_in_the_log_and_in_stats(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        captured_logs: list[MutableMapping[str, Any]],
    ) -> None:
        """An upstream 500 relayed as it came: the access line says failed, /stats counts it."""
        sim = await simulator(fault_error_rate=1.0, fault_error_after_chunks=0)
        prx = await proxy(base_url(sim), lanes=1)
        url = base_url(prx)
        async with aiohttp.ClientSession() as s:
            body = {"model": A, "prompt": "hi", "stream": False}
            async with s.post(url + "/api/generate", json=body) as resp:
                assert resp.status == 500
                assert "error" in json.loads(await resp.read())
        doc = await _stats(url)
        lines = [
            e for e in captured_logs if e["event"] == "request_finished" and e["path"] != "/stats"
        ]
        assert [(e["status"], e["outcome"], e["reason"]) for e in lines] == [
            (500, "failed", "http_500")
        ]
        assert (doc["counters"]["failed"], doc["counters"]["completed"]) == (1, 0)
        assert doc["counters"]["failed_by_reason"] == {"http_500": 1}
