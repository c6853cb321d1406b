"""/stats and /metrics through real sockets: client -> proxy -> simulated Ollama."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats
from tests.waiting import PATIENCE_S, wait_for

MODEL = "qwen2.5:7b-instruct"
PROMPT = "x" * 400  # the simulator's tokenizer: 4 characters a token, so 100 tokens


async def _generate(
    session: aiohttp.ClientSession, url: str, *, num_predict: int, **options: Any
) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "prompt": options.pop("prompt", PROMPT),
        "options": {"num_predict": num_predict, **options},
    }
    async with session.post(f"{url}/api/generate", json=body) as resp:
        assert resp.status == 200
        lines = [line async for line in resp.content]
    final: dict[str, Any] = json.loads(lines[-1])
    return final


async def _get(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(url) as resp:
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json()
        return doc


async def _stats(prx: TestServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        return await _get(session, base_url(prx) + "/stats")


async def test_known_workload_totals(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """20 requests of known size: /stats totals equal the simulator's, lanes read saturated.

    1. Start a simulator with 2 slots and a proxy with 2 lanes.
    2. Send 20 generate requests (100 prompt tokens, num_predict 100) at once.
    3. Mid-run, both lanes are busy and the rest queue; at the end, the counters and token
       totals match the simulator, the busy lane time covers all the time the simulator
       spent on the requests, and there are no warnings.
    """
    sim = await simulator(lanes=2, decode_tps=500.0)
    prx = await proxy(base_url(sim), lanes=2)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        jobs = [asyncio.create_task(_generate(session, url, num_predict=100)) for _ in range(20)]

        async def queued() -> dict[str, Any] | None:
            doc = await _get(session, url + "/stats")
            return doc if doc["queue"]["depth"] > 0 else None

        mid = await wait_for(queued, timeout=PATIENCE_S, what="the burst to queue in the proxy")
        finals = await asyncio.gather(*jobs)
        doc = await _get(session, url + "/stats")
    assert mid["lanes"]["busy"] == 2
    assert mid["queue"]["depth"] > 0
    assert {row["model"] for row in mid["lanes"]["running"]} == {MODEL}
    sim_doc = (await sim_stats(sim))["models"][MODEL]
    c = doc["counters"]
    assert (c["received"], c["admitted"], c["completed"]) == (20, 20, sim_doc["completed"])
    assert sim_doc["requests"] == 20
    assert c["failed"] == c["rejected"] == 0
    assert doc["tokens"]["prompt_tokens"] == sum(f["prompt_eval_count"] for f in finals) == 2000
    assert doc["tokens"]["eval_tokens"] == sum(f["eval_count"] for f in finals) == 2000
    assert doc["models"][MODEL]["requests"] == 20
    assert doc["latency"]["total_ms"]["samples"] == 20
    assert doc["lanes"]["busy"] == 0
    assert doc["queue"]["depth"] == 0
    # Utilization, without timing the test: a lane is busy from admission to the last byte
    # relayed, which encloses the request's whole life in the simulator. So the busy
    # lane-seconds (ratio x lanes x uptime) are at least the simulator's total_duration sum,
    # less its rounding: busy_ratio to 3 decimals, and per request at most 2 ms of model
    # time (load floor, sub-millisecond sleeps skipped) beyond the real time.
    busy_lane_s = doc["utilization"]["busy_ratio_1m"] * 2 * doc["uptime_s"]
    upstream_s = sum(f["total_duration"] for f in finals) / 1e9
    assert busy_lane_s >= upstream_s - 0.001 * doc["uptime_s"] - 20 * 0.002
    assert doc["utilization"]["busy_ratio_5m"] == doc["utilization"]["busy_ratio_1m"]
    assert doc["tokens"]["decode_tokens_per_s"] is not None
    assert doc["warnings"] == []


async def test_idle_proxy_reads_zero(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """A proxy that served nothing shows zero utilization, an empty queue and Ollama's version."""
    sim = await simulator()
    prx = await proxy(base_url(sim), lanes=3)

    async def polled() -> dict[str, Any] | None:  # the background poll runs at startup
        doc = await _stats(prx)
        return doc if doc["upstream"]["reachable"] else None

    doc = await wait_for(polled, timeout=PATIENCE_S, what="the proxy to reach the simulator")
    assert doc["utilization"] == {"busy_ratio_1m": 0.0, "busy_ratio_5m": 0.0}
    assert (doc["lanes"]["configured"], doc["lanes"]["free"]) == (3, 3)
    assert doc["upstream"]["version"] == "0.33.0-sim"
    assert doc["warnings"] == []


async def test_metrics_agree_with_stats(simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
    """/metrics parses with prometheus_client and carries the same numbers as /stats."""
    sim = await simulator(lanes=2)
    prx = await proxy(base_url(sim), lanes=2)
    url = base_url(prx)
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(_generate(session, url, num_predict=10) for _ in range(4)))
        doc = await _get(session, url + "/stats")
        async with session.get(url + "/metrics") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/plain"
            text = await resp.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    c = doc["counters"]
    assert samples[("lanes_requests_completed_total", ())] == c["completed"] == 4
    assert samples[("lanes_requests_received_total", ())] == c["received"]
    assert samples[("lanes_eval_tokens_total", ())] == doc["tokens"]["eval_tokens"] == 40
    assert samples[("lanes_prompt_tokens_total", ())] == doc["tokens"]["prompt_tokens"]
    assert samples[("lanes_lanes_configured", ())] == doc["lanes"]["configured"] == 2
    assert samples[("lanes_queue_max", ())] == doc["queue"]["max_queue"]
    assert samples[("lanes_model_requests_total", (("model", MODEL),))] == 4
    labels = (("model", MODEL), ("priority", "normal"), ("route", "/api/generate"))
    assert samples[("lanes_request_seconds_count", labels)] == 4
    assert samples[("lanes_queue_wait_seconds_count", labels)] == 4
    assert not any(name.startswith("lanes_client_") for name, _ in samples)
