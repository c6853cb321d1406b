"""The lane map at work: the proxy sends no model more than Ollama runs (real processes)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.relay.app import GATE, MAPPER
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import base_url
from tests.machine.processes import child_env, simulator_process
from tests.ports import reserved_port
from tests.waiting import PATIENCE_S, wait_for

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="reads the simulator's environment from /proc"
)

CHAT, EMBED, VISION = "llama3.2:latest", "all-minilm:latest", "qwen3-vl:8b"
SLOW = {"LANES_SIM_DECODE_TPS": "200", "LANES_SIM_LOAD_SECONDS": "0.05"}


async def _sim_stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/_sim/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def _stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def _one(s: aiohttp.ClientSession, url: str, model: str) -> int:
    path = "/api/generate"
    body: dict[str, Any] = {"model": model, "prompt": "hello", "options": {"num_predict": 40}}
    head = {"X-Lanes-Client": "chat"}
    if model == EMBED:
        path, body = "/api/embed", {"model": model, "input": ["a few words to embed"] * 3}
        head = {"X-Lanes-Client": "indexer", "X-Lanes-Priority": "batch"}
    async with s.post(url + path, json=body, headers=head) as resp:
        await resp.read()
        return resp.status


async def _mixed_load(url: str) -> list[int]:
    """16 embeddings from a batch client, 12 chats, 6 vision requests, all at once."""
    models = [EMBED] * 16 + [CHAT] * 12 + [VISION] * 6
    async with aiohttp.ClientSession() as s:
        return list(await asyncio.gather(*(_one(s, url, m) for m in models)))


async def _facts_known(prx_app: Any) -> bool:
    host = prx_app[GATE].queue.host("default")
    return all(model in host.facts for model in (CHAT, EMBED, VISION))


class TestMixedLoad:
    async def test_auto_lanes_never_fill_ollamas_fifo(
        self, proxy: ProxyFactory, tmp_path: Path
    ) -> None:
        """1. A simulator runs with OLLAMA_NUM_PARALLEL=4; the proxy has no --lanes at all.
        2. The proxy reads 4 from the simulator's process and the models' facts.
        3. 16 embeddings, 12 chats and 6 vision requests at once: the chat model reaches 4 in
           flight, the embedding and the qwen3vl model 1 each, and no model ever finds its
           slots full inside the simulator (slot_waits stays 0).
        """
        env = child_env(tmp_path, OLLAMA_NUM_PARALLEL="4", **SLOW)
        with simulator_process(env, tmp_path / "sim.log") as sim:
            prx = await proxy(sim.url, lanes="auto", health_interval_s=0.2)
            url = base_url(prx)
            await wait_for(lambda: _facts_known(prx.app), timeout=PATIENCE_S, what="model facts")

            async def read_four() -> bool:
                row = (await _stats(url))["upstreams"]["default"]
                return bool(row["num_parallel"] == 4 and row["num_parallel_source"] == "ollama-env")

            await wait_for(read_four, timeout=PATIENCE_S, what="NUM_PARALLEL 4 read")
            assert await _mixed_load(url) == [200] * 34
            models = (await _sim_stats(sim.url))["models"]
            doc = await _stats(url)
        peaks = {m: models[m]["max_in_flight"] for m in (CHAT, EMBED, VISION)}
        assert peaks == {CHAT: 4, EMBED: 1, VISION: 1}
        assert {m: models[m]["slot_waits"] for m in peaks} == dict.fromkeys(peaks, 0)
        rows = doc["upstreams"]["default"]["models"]
        assert (rows[CHAT]["lanes"], rows[CHAT]["source"]) == (4, "ollama-env")
        assert (rows[EMBED]["lanes"], rows[EMBED]["source"]) == (1, "rule:embedding")
        assert (rows[VISION]["lanes"], rows[VISION]["source"]) == (1, "rule:architecture qwen3vl")

    async def test_lanes_set_by_hand_fill_ollamas_fifo(
        self, proxy: ProxyFactory, tmp_path: Path
    ) -> None:
        """The control: `--lanes 4` by hand (the old behaviour) sends the one-lane models up
        to 4 at once, and the extra requests wait inside the simulator."""
        env = child_env(tmp_path, OLLAMA_NUM_PARALLEL="4", **SLOW)
        with simulator_process(env, tmp_path / "sim.log") as sim:
            prx = await proxy(sim.url, lanes=4, health_interval_s=0.2)
            assert await _mixed_load(base_url(prx)) == [200] * 34
            models = (await _sim_stats(sim.url))["models"]
        assert models[EMBED]["slot_waits"] + models[VISION]["slot_waits"] > 0
        assert models[EMBED]["max_in_flight"] == 1  # Ollama ran it alone; the rest waited


class TestFollowsOllama:
    async def test_a_restart_with_another_num_parallel_is_followed(
        self, proxy: ProxyFactory, tmp_path: Path
    ) -> None:
        """1. Ollama (the simulator) runs with NUM_PARALLEL=2 on a fixed port; chats peak at 2.
        2. It restarts on the same port with NUM_PARALLEL=3.
        3. A batch sent at once is admitted 2 at a time until the next poll reads 3, then 3:
           every request completes (none lost to the change) and the peak reaches 3.
        """
        with reserved_port() as port:
            listen = f"127.0.0.1:{port}"
            env = child_env(tmp_path, OLLAMA_NUM_PARALLEL="2", **SLOW)
            with simulator_process(env, tmp_path / "a.log", listen) as first:
                prx = await proxy(first.url, lanes="auto", health_interval_s=0.2)
                url, mapper = base_url(prx), prx.app[MAPPER]
                await wait_for(
                    lambda: (
                        mapper.seen.get("default") is not None
                        and mapper.seen["default"].parallel.value == 2
                    ),
                    timeout=PATIENCE_S,
                    what="NUM_PARALLEL 2 read",
                )
                async with aiohttp.ClientSession() as s:
                    statuses = await asyncio.gather(*(_one(s, url, CHAT) for _ in range(6)))
                assert list(statuses) == [200] * 6
                assert (await _sim_stats(first.url))["models"][CHAT]["max_in_flight"] == 2
                old_pid = first.pid
            env = child_env(tmp_path, OLLAMA_NUM_PARALLEL="3", **SLOW)
            with simulator_process(env, tmp_path / "b.log", listen) as second:
                async with aiohttp.ClientSession() as s:
                    statuses = await asyncio.gather(*(_one(s, url, CHAT) for _ in range(12)))
                await wait_for(
                    lambda: mapper.seen["default"].parallel.value == 3,
                    timeout=PATIENCE_S,
                    what="NUM_PARALLEL 3 read after the restart",
                )
                assert mapper.seen["default"].pids == (second.pid,) != (old_pid,)
                assert list(statuses) == [200] * 12
                async with aiohttp.ClientSession() as s:
                    more = await asyncio.gather(*(_one(s, url, CHAT) for _ in range(6)))
                assert list(more) == [200] * 6
                sim = (await _sim_stats(second.url))["models"][CHAT]
        assert (sim["max_in_flight"], sim["slot_waits"]) == (3, 0)
