"""Several Ollama hosts behind one proxy: lanes per host, warm-first, failover, affinity, pins."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.relay.app import GATE
from proxy.simulator.app import create_app as create_sim
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url, sim_settings, sim_stats
from tests.ports import reserved_port
from tests.waiting import PATIENCE_S, wait_for

A, B = "llama3.2:latest", "qwen2.5:7b-instruct"
FAST_CHECKS: dict[str, Any] = {
    "health_interval_s": 0.1,
    "breaker_failures": 2,
    "breaker_open_s": 0.5,
}


def _spec(name: str, sim: TestServer, lanes: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": base_url(sim), "lanes": lanes, **extra}


async def _generate(
    session: aiohttp.ClientSession, url: str, model: str = A, **options: Any
) -> tuple[int, list[dict[str, Any]]]:
    """One streamed /api/generate; returns the status and the NDJSON lines."""
    body = {"model": model, "prompt": "hi", "options": {"num_predict": 5, **options}}
    async with session.post(url + "/api/generate", json=body) as resp:
        text = await resp.text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return resp.status, lines


async def _stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


def _requests(stats: dict[str, Any], model: str = A) -> int:
    return int(stats["models"][model]["requests"])


class TestLanesPerHost:
    async def test_each_host_keeps_to_its_lanes_and_all_lanes_fill(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Each host gets at most its lanes, and under load every lane of every host fills."""
        x, y = await simulator(lanes=8), await simulator(lanes=8)
        prx = await proxy(
            base_url(x), upstreams=[_spec("x", x, 2), _spec("y", y, 3)], **FAST_CHECKS
        )
        url, gate = base_url(prx), prx.app[GATE]
        async with aiohttp.ClientSession() as s:
            results = await asyncio.gather(*(_generate(s, url, num_predict=40) for _ in range(100)))
        assert [status for status, _ in results] == [200] * 100
        assert all(lines[-1]["done"] for _, lines in results)
        sx, sy = await sim_stats(x), await sim_stats(y)
        assert (sx["max_in_flight_total"], sy["max_in_flight_total"]) == (2, 3)
        assert _requests(sx) + _requests(sy) == 100
        assert gate.peak_busy == 5  # the gate's own count: every lane of both hosts at once
        doc = await _stats(url)
        assert {n: row["requests"] for n, row in doc["upstreams"].items()} == {
            "x": _requests(sx),
            "y": _requests(sy),
        }
        assert {n: (r["lanes"], r["busy"], r["healthy"]) for n, r in doc["upstreams"].items()} == {
            "x": (2, 0, True),
            "y": (3, 0, True),
        }
        async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as resp:
            metrics = await resp.text()
        assert 'lanes_host_lanes{upstream="y"} 3.0' in metrics
        assert f'lanes_host_requests_total{{upstream="x"}} {float(_requests(sx))}' in metrics
        assert 'lanes_host_loaded_model{model="llama3.2:latest",upstream="x"} 1.0' in metrics

    async def test_warm_first(self, simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
        """A host with the model loaded gets its requests while it has a free lane."""
        x, y = await simulator(lanes=4), await simulator(lanes=4)
        async with aiohttp.ClientSession() as s:
            async with s.post(base_url(y) + "/api/generate", json={"model": B}) as resp:
                assert resp.status == 200  # B is now loaded on y only
            prx = await proxy(
                base_url(x), upstreams=[_spec("x", x, 1), _spec("y", y, 1)], **FAST_CHECKS
            )
            url = base_url(prx)

            async def y_knows_b() -> bool:
                return B in (await _stats(url))["upstreams"]["y"]["warm_models"]

            await wait_for(y_knows_b, timeout=PATIENCE_S, what="the proxy to see B loaded on y")
            loaded_by = _requests(await sim_stats(y), B)  # the load counts as one
            for _ in range(6):  # one at a time: y always has its lane free
                assert (await _generate(s, url, B))[0] == 200
            assert _requests(await sim_stats(y), B) == loaded_by + 6
            assert _requests(await sim_stats(x), B) == 0
            holder = asyncio.create_task(_generate(s, url, B, num_predict=HOLD_TOKENS))

            async def y_busy() -> bool:
                return bool((await sim_stats(y))["models"][B]["in_flight"] == 1)

            await wait_for(y_busy, timeout=PATIENCE_S, what="a long B request to hold y's lane")
            assert (await _generate(s, url, B))[0] == 200
            assert _requests(await sim_stats(x), B) == 1  # y was busy: the second went to x
            assert _requests(await sim_stats(y), B) == loaded_by + 7
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)

    async def test_never_a_host_without_the_model_while_another_has_it(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A model installed on one host only never goes to a host that lacks it."""
        x, y = await simulator(models=[A], lanes=4), await simulator(models=[B], lanes=4)
        prx = await proxy(
            base_url(x), upstreams=[_spec("x", x, 1), _spec("y", y, 3)], **FAST_CHECKS
        )
        queue = prx.app[GATE].queue
        await wait_for(
            lambda: None not in (queue.host("x").installed, queue.host("y").installed),
            timeout=PATIENCE_S,
            what="both hosts' model lists",
        )
        async with aiohttp.ClientSession() as s:
            results = await asyncio.gather(
                *(_generate(s, base_url(prx), (A, B)[i % 3 == 0]) for i in range(12))
            )
        assert [status for status, _ in results] == [200] * 12  # y would answer 404 for A
        assert (_requests(await sim_stats(x)), _requests(await sim_stats(y), B)) == (8, 4)


class TestFailover:
    async def test_a_stopped_host_is_routed_around_and_rejoins(
        self, aiohttp_server: AiohttpServer, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A host that stops is taken out of placement, and rejoins once it answers again."""
        with reserved_port() as port:
            await self._stop_and_rejoin(aiohttp_server, simulator, proxy, port)

    @staticmethod
    async def _stop_and_rejoin(
        aiohttp_server: AiohttpServer, simulator: SimulatorFactory, proxy: ProxyFactory, port: int
    ) -> None:
        x = await aiohttp_server(create_sim(sim_settings(lanes=4)), port=port)
        y = await simulator(lanes=4)
        prx = await proxy(
            base_url(y), upstreams=[_spec("x", x, 2), _spec("y", y, 2)], **FAST_CHECKS
        )
        url, gate = base_url(prx), prx.app[GATE]
        async with aiohttp.ClientSession() as s:
            tasks = [asyncio.create_task(_generate(s, url, num_predict=100)) for _ in range(40)]

            async def x_started() -> bool:  # and enough left queued to be bound to x again
                return _requests(await sim_stats(x)) > 0 and gate.depth >= 20

            await wait_for(x_started, timeout=PATIENCE_S, what="x to serve, 20 still queued")
            await x.close()
            async with asyncio.timeout(30):
                results = await asyncio.gather(*tasks)
            for status, lines in results:  # success, or a clear error: nothing hangs
                ok = status == 200 and lines[-1].get("done") is True
                assert ok or "error" in lines[-1], (status, lines[-1:])
            failed = sum(1 for status, lines in results if "error" in lines[-1])
            assert failed <= 2  # at most what was streaming on x; the rest were retried
            rows = (await _stats(url))["upstreams"]
            retried = rows["x"]["requests"] + rows["y"]["requests"] - 40
            assert retried >= 1  # bound to x after it stopped, then sent to y
            assert rows["x"]["errors"] == retried + failed

            await wait_for(
                lambda: not _healthy(prx, "x"), timeout=PATIENCE_S, what="x to be marked down"
            )
            before = _requests(await sim_stats(y))
            after = await asyncio.gather(*(_generate(s, url) for _ in range(10)))
            assert [status for status, _ in after] == [200] * 10
            assert _requests(await sim_stats(y)) == before + 10

            x2 = await aiohttp_server(create_sim(sim_settings(lanes=4)), port=port)
            await wait_for(
                lambda: _healthy(prx, "x"), timeout=PATIENCE_S, what="x to be healthy again"
            )
            again = await asyncio.gather(*(_generate(s, url, num_predict=50) for _ in range(12)))
            assert [status for status, _ in again] == [200] * 12
            assert _requests(await sim_stats(x2)) > 0


def _healthy(prx: TestServer, name: str) -> bool:
    queue = prx.app[GATE].queue
    return queue.host(name).healthy


def _swaps(stats: dict[str, Any]) -> int:
    return sum(int(m["evictions"]) for m in stats["models"].values())


async def _interleaved(url: str, n: int) -> None:
    async with aiohttp.ClientSession() as s:
        results = await asyncio.gather(*(_generate(s, url, (A, B)[i % 2]) for i in range(n)))
    assert [status for status, _ in results] == [200] * n


class TestAffinity:
    async def test_two_models_on_a_host_that_holds_one(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With affinity, two models on a one-model host swap about once per batch."""
        direct = await simulator(lanes=2, max_loaded_models=1)
        await _interleaved(base_url(direct), 30)
        assert _swaps(await sim_stats(direct)) >= 25  # about one swap per request

        sim = await simulator(lanes=2, max_loaded_models=1)
        spec = _spec("solo", sim, 2, max_loaded_models=1)
        prx = await proxy(base_url(sim), upstreams=[spec], affinity_wait_s=30.0)
        await _interleaved(base_url(prx), 30)
        assert _swaps(await sim_stats(sim)) <= 2
        assert (await _stats(base_url(prx)))["upstreams"]["solo"]["swaps"] <= 2

    async def test_off_means_one_swap_per_request(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With affinity off, interleaved models swap on every request."""
        sim = await simulator(lanes=2, max_loaded_models=1)
        spec = _spec("solo", sim, 2, max_loaded_models=1)
        prx = await proxy(base_url(sim), upstreams=[spec], affinity_wait_s=0.0)
        await _interleaved(base_url(prx), 20)
        assert (await _stats(base_url(prx)))["upstreams"]["solo"]["swaps"] >= 15


class TestPinning:
    async def test_pinned_num_ctx_removes_the_reloads(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Pinning num_ctx for a model stops the reloads mixed clients cause."""
        contexts: list[dict[str, Any]] = [{"num_ctx": 2048}, {"num_ctx": 8192}, {}] * 4

        async def mixed(url: str) -> None:
            async with aiohttp.ClientSession() as s:
                for extra in contexts:
                    assert (await _generate(s, url, A, **extra))[0] == 200

        direct = await simulator(lanes=1)
        await mixed(base_url(direct))
        assert (await sim_stats(direct))["models"][A]["reloads"] >= 10

        sim = await simulator(lanes=1)
        pin = {A: {"num_ctx": 4096, "keep_alive": "1h"}}
        prx = await proxy(base_url(sim), pin=pin)
        await mixed(base_url(prx))
        counters = (await sim_stats(sim))["models"][A]
        assert (counters["loads"], counters["reloads"]) == (1, 0)
        doc = await _stats(base_url(prx))
        assert doc["pins"] == {A: {"num_ctx": 4096, "keep_alive": "1h", "pinned": 12}}


class TestMergedViews:
    async def test_tags_ps_and_v1_models_are_the_union(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With several hosts, the model lists are merged from every healthy host."""
        x = await simulator(models=[A, B])
        y = await simulator(models=[B, "all-minilm"])
        prx = await proxy(base_url(x), upstreams=[_spec("x", x, 1), _spec("y", y, 1)])
        url = base_url(prx)
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/api/tags") as resp:
                assert resp.status == 200
                names = [m["name"] for m in (await resp.json())["models"]]
            assert sorted(names) == sorted([A, B, "all-minilm:latest"])
            async with s.get(url + "/v1/models") as resp:
                ids = [m["id"] for m in (await resp.json())["data"]]
            assert sorted(ids) == sorted(names)
            async with s.post(url + "/api/generate", json={"model": B}) as resp:
                assert resp.status == 200
            async with s.get(url + "/api/ps") as resp:
                assert [m["name"] for m in (await resp.json())["models"]] == [B]

    async def test_views_skip_a_host_that_is_down_and_fail_when_all_are(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Merged lists leave out a host that is down, and answer 502 when none answers."""
        x = await simulator(models=[A])
        y = await simulator(models=[B])
        specs = [_spec("x", x, 1), _spec("y", y, 1)]
        prx = await proxy(base_url(x), upstreams=specs, **FAST_CHECKS)
        url = base_url(prx)
        await y.close()
        await wait_for(
            lambda: not _healthy(prx, "y"), timeout=PATIENCE_S, what="y to be marked down"
        )
        async with aiohttp.ClientSession() as s:
            async with s.get(url + "/api/tags") as resp:
                assert [m["name"] for m in (await resp.json())["models"]] == [A]
            await x.close()
            async with s.get(url + "/api/tags") as resp:
                assert resp.status == 502
                assert "no upstream answered /api/tags" in (await resp.json())["error"]

    async def test_management_routes_need_the_upstream_header(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Pull, delete and the other management routes need X-Lanes-Upstream with several hosts."""
        x, y = await simulator(models=[A]), await simulator(models=[B])
        prx = await proxy(base_url(x), upstreams=[_spec("x", x, 1), _spec("y", y, 1)])
        url, pull = base_url(prx), {"model": B, "stream": False}
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/api/pull", json=pull) as resp:
                assert resp.status == 400
                message = (await resp.json())["error"]
            assert "X-Lanes-Upstream" in message
            assert "x | y" in message
            headers = {"X-Lanes-Upstream": "y"}
            async with s.post(url + "/api/pull", json=pull, headers=headers) as resp:
                assert (resp.status, await resp.json()) == (200, {"status": "success"})
            headers = {"X-Lanes-Upstream": "x"}  # x has no B: its own answer comes back
            async with s.post(url + "/api/pull", json=pull, headers=headers) as resp:
                assert resp.status == 500
            headers = {"X-Lanes-Upstream": "nowhere"}
            async with s.post(url + "/api/pull", json=pull, headers=headers) as resp:
                assert resp.status == 400
                assert "nowhere" in (await resp.json())["error"]

    async def test_one_upstream_needs_no_header(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With one host, management routes go there without a header."""
        sim = await simulator(models=[A])
        prx = await proxy(base_url(sim))
        async with (
            aiohttp.ClientSession() as s,
            s.post(base_url(prx) + "/api/pull", json={"model": A, "stream": False}) as resp,
        ):
            assert resp.status == 200
