"""Fault injection: each mode does what it says, run-wide or for one model."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from proxy.simulator.faults import RUNNER_ERROR
from proxy.simulator.wire import BUSY_MESSAGE
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats

LLAMA = "llama3.2:latest"


def generate(stream: bool = True, num_predict: int = 6, **extra: Any) -> dict[str, Any]:
    options = {"num_predict": num_predict}
    return {"model": "llama3.2", "prompt": "p", "stream": stream, "options": options} | extra


async def injected(sim: Any, model: str = LLAMA) -> int:
    return int((await sim_stats(sim))["models"][model]["errors_injected"])


class TestFaults:
    async def test_error_before_first_byte_is_a_500(self, simulator: SimulatorFactory) -> None:
        """fault_error_rate 1: streamed or not, a 500 with Ollama's runner error."""
        sim = await simulator(fault_error_rate=1.0)
        async with aiohttp.ClientSession() as session:
            for stream in (True, False):
                url = base_url(sim) + "/api/generate"
                async with session.post(url, json=generate(stream)) as resp:
                    assert (resp.status, await resp.json()) == (500, {"error": RUNNER_ERROR})
        stats = (await sim_stats(sim))["models"][LLAMA]
        assert (stats["errors_injected"], stats["failed"], stats["in_flight"]) == (2, 2, 0)

    async def test_error_mid_stream_is_a_trailing_line(self, simulator: SimulatorFactory) -> None:
        """With error_after_chunks 3, a stream sends 3 chunks, then an error line, status 200."""
        sim = await simulator(fault_error_rate=1.0, fault_error_after_chunks=3)
        async with (
            aiohttp.ClientSession() as session,
            session.post(base_url(sim) + "/api/generate", json=generate()) as resp,
        ):
            lines = [json.loads(line) for line in (await resp.text()).splitlines()]
        assert resp.status == 200
        assert [line["done"] for line in lines[:3]] == [False, False, False]
        assert lines[3:] == [{"error": RUNNER_ERROR}]

    async def test_busy_answers_503(self, simulator: SimulatorFactory) -> None:
        """fault_busy_rate 1: the queue-full 503 body, on a loaded model too."""
        sim = await simulator(fault_busy_rate=1.0)
        async with (
            aiohttp.ClientSession() as session,
            session.post(base_url(sim) + "/api/generate", json=generate(False)) as resp,
        ):
            assert (resp.status, await resp.json()) == (503, {"error": BUSY_MESSAGE})

    async def test_hang_delays_the_first_byte(self, simulator: SimulatorFactory) -> None:
        """fault_hang_s holds the slot silently: a short client timeout fires."""
        sim = await simulator(fault_hang_s=5.0)
        timeout = aiohttp.ClientTimeout(total=0.3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            with pytest.raises(asyncio.TimeoutError):
                async with session.post(base_url(sim) + "/api/generate", json=generate()) as r:
                    await r.read()
        stats = (await sim_stats(sim))["models"][LLAMA]
        assert stats["errors_injected"] == 1
        assert stats["completed"] == 0

    async def test_drop_mid_stream_closes_the_connection(self, simulator: SimulatorFactory) -> None:
        """fault_drop_after_chunks 2: two lines arrive, then the connection closes."""
        sim = await simulator(fault_drop_after_chunks=2)
        url = base_url(sim) + "/api/generate"
        received: list[bytes] = []

        async def fetch(stream: bool) -> None:
            async with session.post(url, json=generate(stream)) as resp:
                async for line in resp.content:
                    received.append(line)

        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientPayloadError):
                await fetch(True)
            assert len(received) == 2
            with pytest.raises(aiohttp.ClientConnectionError):
                await fetch(False)
        assert await injected(sim) == 2

    async def test_malformed_output(self, simulator: SimulatorFactory) -> None:
        """fault_malformed_rate 1: a broken NDJSON line, broken JSON content, a broken body."""
        sim = await simulator(fault_malformed_rate=1.0)
        url = base_url(sim) + "/api/generate"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=generate()) as resp:
                lines = (await resp.text()).splitlines()
            bad = [line for line in lines if not _parses(line)]
            assert len(bad) == 1
            assert len(lines) == 8  # 6 chunks, the malformed line, the final line
            async with session.post(url, json=generate(False, 400, format="json")) as resp:
                content = (await resp.json())["response"]
            assert not _parses(content)
            async with session.post(url, json=generate(False)) as resp:
                assert not _parses(await resp.text())

    async def test_slow_first_token(self, simulator: SimulatorFactory) -> None:
        """fault_slow_first_token_s delays the first chunk (shows in prompt_eval_duration)."""
        sim = await simulator(fault_slow_first_token_s=0.3)
        async with aiohttp.ClientSession() as session:
            begin = time.monotonic()
            async with session.post(base_url(sim) + "/api/generate", json=generate()) as resp:
                await resp.content.readline()
                first_line_s = time.monotonic() - begin
                final = json.loads((await resp.text()).splitlines()[-1])
        assert first_line_s >= 0.3
        assert final["prompt_eval_duration"] >= 300_000_000

    async def test_faults_per_model(self, simulator: SimulatorFactory) -> None:
        """A --model fault key affects only that model."""
        sim = await simulator(models=["llama3.2:error_rate=1", "qwen2.5:7b-instruct"])
        async with aiohttp.ClientSession() as session:
            url = base_url(sim) + "/api/generate"
            async with session.post(url, json=generate(False)) as resp:
                assert resp.status == 500
            body = generate(False) | {"model": "qwen2.5:7b-instruct"}
            async with session.post(url, json=body) as resp:
                assert resp.status == 200


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
