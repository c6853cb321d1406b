"""Scheduling seen from outside: lanes, FIFO order, reloads, truncation, disconnects, 503."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from proxy.simulator.content import truncated_tokens
from proxy.simulator.wire import BUSY_MESSAGE
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url, sim_stats
from tests.simulator.helpers import post_json, wait_for_stats

LLAMA = "llama3.2:latest"


def llama(stats: dict[str, Any]) -> dict[str, Any]:
    model: dict[str, Any] = stats["models"][LLAMA]
    return model


async def _events(sim: Any) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url(sim) + "/_sim/events") as resp,
    ):
        events: list[dict[str, Any]] = (await resp.json())["events"]
        return events


def queued(waiting: int) -> Callable[[dict[str, Any]], bool]:
    """A stats check: `waiting` llama requests wait for a slot."""
    return lambda stats: bool(llama(stats)["queued"] == waiting)


class TestLanes:
    async def test_two_lanes_six_requests_fifo(self, simulator: SimulatorFactory) -> None:
        """With lanes 2, six requests: never more than 2 in flight, and they start FIFO.

        1. Load the model.
        2. r0 and r1 stream long answers and hold both slots.
        3. r2..r5 (30 tokens) are sent one after another, each once the previous one is
           counted as queued.
        4. r0 and r1 hang up: r2..r5 run two at a time and complete with 30 tokens each.
        5. The simulator's own peak is 2 in flight; its start events list the six tags in
           arrival order.
        """
        sim = await simulator(lanes=2, decode_tps=300)
        url = base_url(sim) + "/api/generate"

        def body(i: int, tokens: int) -> dict[str, Any]:
            return {"model": "llama3.2", "prompt": f"q{i}", "options": {"num_predict": tokens}}

        async with aiohttp.ClientSession() as session:
            await post_json(session, sim, "/api/generate", {"model": "llama3.2"})
            holders = []
            for i in range(2):
                holder = await session.post(
                    url, json=body(i, HOLD_TOKENS), headers={"X-Sim-Tag": f"r{i}"}
                )
                await holder.content.readline()  # streaming: it holds a slot
                holders.append(holder)

            async def one(i: int) -> int:
                headers = {"X-Sim-Tag": f"r{i}"}
                async with session.post(url, json=body(i, 30), headers=headers) as resp:
                    lines = (await resp.text()).splitlines()
                return int(json.loads(lines[-1])["eval_count"])

            tasks = []
            for i in range(2, 6):
                tasks.append(asyncio.create_task(one(i)))
                await wait_for_stats(sim, queued(i - 1), f"r{i} to queue behind the others")
            for holder in holders:
                holder.close()
            counts = await asyncio.gather(*tasks)
        stats = await sim_stats(sim)
        assert counts == [30] * 4
        assert llama(stats)["max_in_flight"] == 2
        assert (llama(stats)["completed"], llama(stats)["cancellations"]) == (4, 2)
        starts = [e["tag"] for e in await _events(sim) if e["event"] == "start" and "tag" in e]
        assert [f"r{i}" for i in range(6)] == starts

    async def test_decode_slows_when_requests_share_the_model(
        self, simulator: SimulatorFactory
    ) -> None:
        """k requests decoding at once share decode_tps * k**alpha (alpha 0: 1/k each)."""
        sim = await simulator(lanes=4, decode_tps=400, batch_alpha=0.0)
        body = {"model": "llama3.2", "prompt": "x", "stream": False, "options": {"num_predict": 40}}
        async with aiohttp.ClientSession() as session:
            await post_json(session, sim, "/api/generate", {"model": "llama3.2"})
            _, alone = await post_json(session, sim, "/api/generate", body)
            together = await asyncio.gather(
                *(post_json(session, sim, "/api/generate", body) for _ in range(4))
            )
        solo_ns = json.loads(alone)["eval_duration"]
        shared_ns = min(json.loads(text)["eval_duration"] for _, text in together)
        assert shared_ns > 2 * solo_ns  # ideal: 4x


class TestReloadAndTruncation:
    async def test_num_ctx_change_reloads(self, simulator: SimulatorFactory) -> None:
        """A new num_ctx reloads the model: load_duration covers the load, stats count it."""
        sim = await simulator(load_seconds=0.3)
        url = base_url(sim)

        def body(num_ctx: int) -> dict[str, Any]:
            options = {"num_ctx": num_ctx, "num_predict": 3}
            return {"model": "llama3.2", "prompt": "hi", "stream": False, "options": options}

        async with aiohttp.ClientSession() as session:
            replies, loads = [], []
            for num_ctx in (4096, 4096, 8192):
                _, text = await post_json(session, sim, "/api/generate", body(num_ctx))
                replies.append(json.loads(text))
                stats = llama(await sim_stats(sim))
                loads.append((stats["loads"], stats["reloads"]))
            async with session.get(url + "/api/ps") as resp:
                (row,) = (await resp.json())["models"]
        first, _, reloaded = (r["load_duration"] for r in replies)
        assert first >= 300_000_000  # lower bounds: a load takes at least load_seconds
        assert reloaded >= 300_000_000
        assert loads == [(1, 0), (1, 0), (2, 1)]  # the warm request loaded nothing
        assert row["context_length"] == 8192

    async def test_long_prompt_is_truncated(self, simulator: SimulatorFactory) -> None:
        """A prompt over num_ctx shows up only as a smaller prompt_eval_count."""
        sim = await simulator()
        body = {
            "model": "llama3.2",
            "prompt": "word " * 800,
            "stream": False,
            "options": {"num_ctx": 256, "num_predict": 2},
        }
        async with aiohttp.ClientSession() as session:
            status, text = await post_json(session, sim, "/api/generate", body)
        assert status == 200
        assert truncated_tokens(1000, 256) == json.loads(text)["prompt_eval_count"] == 130


class TestModels:
    async def test_loading_another_model_evicts_an_idle_one(
        self, simulator: SimulatorFactory
    ) -> None:
        """With max_loaded_models 1, a request for a second model evicts the first."""
        sim = await simulator(max_loaded_models=1)
        async with aiohttp.ClientSession() as session:
            await post_json(session, sim, "/api/generate", {"model": "llama3.2"})
            body = {"model": "qwen2.5:7b-instruct", "prompt": "x", "stream": False}
            assert (await post_json(session, sim, "/api/generate", body))[0] == 200
            async with session.get(base_url(sim) + "/api/ps") as resp:
                names = [m["name"] for m in (await resp.json())["models"]]
        assert names == ["qwen2.5:7b-instruct"]
        assert llama(await sim_stats(sim))["evictions"] == 1

    async def test_keep_alive_zero_unloads_after_the_request(
        self, simulator: SimulatorFactory
    ) -> None:
        """A request with keep_alive 0 is served, then the model unloads."""
        sim = await simulator()
        body = {"model": "llama3.2", "prompt": "x", "stream": False, "keep_alive": 0}
        async with aiohttp.ClientSession() as session:
            assert (await post_json(session, sim, "/api/generate", body))[0] == 200
            async with session.get(base_url(sim) + "/api/ps") as resp:
                assert (await resp.json())["models"] == []
        assert llama(await sim_stats(sim))["unloads"] == 1


class TestDisconnect:
    async def test_disconnect_mid_stream_frees_the_slot(self, simulator: SimulatorFactory) -> None:
        """1. A holds the only lane, streaming slowly. 2. B queues behind it.
        3. A's client hangs up after one chunk. 4. B starts and completes; A counts as cancelled.
        """
        sim = await simulator(lanes=1, decode_tps=50)
        url = base_url(sim) + "/api/generate"
        slow = {"model": "llama3.2", "prompt": "a", "options": {"num_predict": HOLD_TOKENS}}
        quick = {"model": "llama3.2", "prompt": "b", "stream": False, "options": {"num_predict": 2}}
        async with aiohttp.ClientSession() as session:
            resp_a = await session.post(url, json=slow)
            await resp_a.content.readline()
            task_b = asyncio.create_task(post_json(session, sim, "/api/generate", quick))
            await wait_for_stats(sim, queued(1), "B to queue behind A")
            resp_a.close()
            status, _ = await task_b
        assert status == 200
        stats = llama(await sim_stats(sim))
        assert (stats["cancellations"], stats["completed"], stats["in_flight"]) == (1, 1, 0)

    async def test_disconnect_while_queued_leaves_the_fifo(
        self, simulator: SimulatorFactory
    ) -> None:
        """A waiter whose client leaves is removed from the slot queue and counted."""
        sim = await simulator(lanes=1, decode_tps=50)
        url = base_url(sim) + "/api/generate"
        slow = {"model": "llama3.2", "prompt": "a", "options": {"num_predict": HOLD_TOKENS}}
        async with aiohttp.ClientSession() as session:
            resp_a = await session.post(url, json=slow)
            await resp_a.content.readline()
            waiter = asyncio.create_task(post_json(session, sim, "/api/generate", slow))
            await wait_for_stats(sim, queued(1), "the waiter to queue")
            waiter.cancel()
            stats = await wait_for_stats(
                sim, lambda s: llama(s)["cancellations"] == 1, "the waiter to be cancelled"
            )
            assert (llama(stats)["queued"], llama(stats)["in_flight"]) == (0, 1)
            resp_a.close()
        await wait_for_stats(sim, lambda s: llama(s)["in_flight"] == 0, "A to be cancelled")


class TestSchedulerQueue:
    async def test_burst_during_load_gets_503(self, simulator: SimulatorFactory) -> None:
        """While a model loads, requests beyond max_queue get the exact 503 body.

        1. Two requests fill the queue of 2 and wait for the load (counted as queued).
        2. Three more arrive while it loads: each is answered 503 at once.
        3. The first two complete once the model is loaded.
        """
        sim = await simulator(max_queue=2, load_seconds=1.0)
        body = {"model": "llama3.2", "prompt": "x", "stream": False, "options": {"num_predict": 1}}
        async with aiohttp.ClientSession() as session:
            admitted = [
                asyncio.create_task(post_json(session, sim, "/api/generate", body))
                for _ in range(2)
            ]
            await wait_for_stats(sim, queued(2), "two requests waiting for the load")
            refused = await asyncio.gather(
                *(post_json(session, sim, "/api/generate", body) for _ in range(3))
            )
            results = [*await asyncio.gather(*admitted), *refused]
            statuses = [status for status, _ in results]
            assert statuses == [200, 200, 503, 503, 503]
            busy = next(text for status, text in results if status == 503)
            assert busy == '{"error":"' + BUSY_MESSAGE + '"}'
            assert "again.  maximum" in busy
            # Once loaded, the fast path never rejects, however many arrive.
            more = await asyncio.gather(
                *(post_json(session, sim, "/api/generate", body) for _ in range(8))
            )
        assert [status for status, _ in more] == [200] * 8
        assert llama(await sim_stats(sim))["rejected"] == 3

    async def test_reset_zeroes_counters(self, simulator: SimulatorFactory) -> None:
        """POST /_sim/reset zeroes the counters and keeps the model loaded."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            await post_json(session, sim, "/api/generate", {"model": "llama3.2"})
            async with session.post(base_url(sim) + "/_sim/reset") as resp:
                stats = await resp.json()
        assert (
            stats["requests_total"],
            llama(stats)["loads"],
            llama(stats)["loaded"],
        ) == (0, 0, True)
