"""Ollama's lane rules in the simulator: slots per model, and the requests that found them full."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.lanes.lanemap import ONE_LANE_ARCHITECTURES
from proxy.simulator.catalog import ModelSpec, parse_model_spec
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url, sim_settings, sim_stats
from tests.simulator.helpers import post_json, wait_for_stats

CHAT = "qwen2.5:7b-instruct"
VISION = "qwen3-vl:8b"
EMBED = "all-minilm:latest"

# Embeddings hold their slot for their prefill only: 500 tokens at 5 tokens/s is 100 s.
SLOW_PREFILL = {"prefill_tps": 5.0}
LONG_INPUT = "word " * 400


def slots(**settings: Any) -> dict[str, int]:
    """Each model's slots in a simulator with these settings."""
    simulated = sim_settings(**settings)
    return {spec.name: simulated.slots_for(spec) for spec in simulated.models}


class TestSlotRules:
    def test_default_models_get_ollamas_slots(self) -> None:
        """NUM_PARALLEL 4: the chat models get 4 slots, the embedding and qwen3vl models 1."""
        expected = {CHAT: 4, "llama3.2:latest": 4, EMBED: 1, VISION: 1}
        assert expected == slots(lanes=4)

    @pytest.mark.parametrize("arch", sorted(ONE_LANE_ARCHITECTURES))
    def test_one_lane_architectures_get_one_slot(self, arch: str) -> None:
        """Every architecture of the lane map's one-lane set runs one request at a time."""
        assert slots(lanes=4, models=[f"m:arch={arch}", "other:arch=llama"]) == {
            "m:latest": 1,
            "other:latest": 4,
        }

    def test_embedding_models_get_one_slot(self) -> None:
        """An embedding model of any architecture gets 1 slot."""
        assert slots(lanes=4, models=["nomic-embed-text:embed,family=nomic-bert"]) == {
            "nomic-embed-text:latest": 1
        }

    def test_spec_lanes_override_the_rules(self) -> None:
        """A model's own `lanes` beats the architecture and embedding rules."""
        assert slots(lanes=4, models=["vl:arch=qwen3vl,lanes=3", "e:embed,lanes=2"]) == {
            "vl:latest": 3,
            "e:latest": 2,
        }

    def test_architecture_defaults_to_the_family(self) -> None:
        """Without `architecture`, a spec's architecture is its family."""
        assert ModelSpec(name="g", family="gemma3").architecture == "gemma3"

    def test_arch_and_vision_spec_keys(self) -> None:
        """`--model NAME:arch=...,vision` sets the architecture and the vision capability."""
        expected = {"name": "vl", "architecture": "qwen3vl", "vision": True}
        assert expected == parse_model_spec("vl:arch=qwen3vl,vision")

    def test_new_family_of_a_default_model_moves_its_architecture(self) -> None:
        """`--model llama3.2:family=qwen3vl` is a qwen3vl model, with llama3.2's other details."""
        (spec,) = sim_settings(models=["llama3.2:family=qwen3vl"]).models
        assert (spec.architecture, spec.parameter_size) == ("qwen3vl", "3.2B")


def _request(model: str, hold: bool) -> tuple[str, dict[str, Any]]:
    """A request for `model`: held for minutes (hold) or done in milliseconds."""
    if model == EMBED:
        return "/api/embed", {"model": model, "input": LONG_INPUT if hold else "short"}
    tokens = HOLD_TOKENS if hold else 5
    return "/api/generate", {"model": model, "prompt": "x", "options": {"num_predict": tokens}}


@asynccontextmanager
async def sent(sim: TestServer, requests: dict[str, int]) -> AsyncIterator[None]:
    """Send `count` held requests to each model at once; they hang up on exit."""
    async with aiohttp.ClientSession() as session:

        async def one(model: str) -> None:
            path, body = _request(model, hold=True)
            async with session.post(base_url(sim) + path, json=body) as resp:
                await resp.read()

        tasks = [
            asyncio.create_task(one(model))
            for model, count in requests.items()
            for _ in range(count)
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def settled(expected: dict[str, tuple[int, int]]) -> Callable[[dict[str, Any]], bool]:
    """A stats check: each model has (in flight, queued) as expected."""

    def check(stats: dict[str, Any]) -> bool:
        models = stats["models"]
        return all(
            (models[m]["in_flight"], models[m]["queued"]) == pair for m, pair in expected.items()
        )

    return check


async def three_models(simulator: SimulatorFactory, *, slow_prefill: bool = True) -> TestServer:
    """NUM_PARALLEL 3 serving the chat, qwen3vl and embedding models (slow prefill: held
    embeddings hold their slot)."""
    timing = SLOW_PREFILL if slow_prefill else {}
    return await simulator(lanes=3, models=[CHAT, VISION, EMBED], **timing)


class TestSlotsInFlight:
    async def test_one_lane_models_run_one_while_others_run_num_parallel(
        self, simulator: SimulatorFactory
    ) -> None:
        """NUM_PARALLEL 3, four held requests per model at once: the simulator's own peaks
        are 3 for the chat model and 1 for the qwen3vl and embedding models."""
        sim = await three_models(simulator)
        async with sent(sim, {CHAT: 4, VISION: 4, EMBED: 4}):
            expected = {CHAT: (3, 1), VISION: (1, 3), EMBED: (1, 3)}
            stats = await wait_for_stats(sim, settled(expected), "every request to arrive")
        peaks = {m: stats["models"][m]["max_in_flight"] for m in (CHAT, VISION, EMBED)}
        assert peaks == {CHAT: 3, VISION: 1, EMBED: 1}

    async def test_stats_show_each_models_slots(self, simulator: SimulatorFactory) -> None:
        """/_sim/stats shows the slots each model gets."""
        sim = await three_models(simulator)
        models = (await sim_stats(sim))["models"]
        assert {m: models[m]["slots"] for m in models} == {CHAT: 3, VISION: 1, EMBED: 1}


class TestSlotWaits:
    async def test_no_wait_within_the_slots(self, simulator: SimulatorFactory) -> None:
        """Requests that never exceed a model's slots count no slot wait."""
        sim = await three_models(simulator)
        async with sent(sim, {CHAT: 3, VISION: 1, EMBED: 1}):
            expected = {CHAT: (3, 0), VISION: (1, 0), EMBED: (1, 0)}
            stats = await wait_for_stats(sim, settled(expected), "every request to hold a slot")
        waits = {m: stats["models"][m]["slot_waits"] for m in (CHAT, VISION, EMBED)}
        assert (waits, stats["slot_waits_total"]) == ({CHAT: 0, VISION: 0, EMBED: 0}, 0)

    async def test_extra_requests_each_count_one_wait(self, simulator: SimulatorFactory) -> None:
        """Three long requests at once to a 1-slot model count 2 slot waits; 5 to a
        3-slot model count 2; the run-wide total is their sum."""
        sim = await three_models(simulator)
        async with sent(sim, {VISION: 3, CHAT: 5}):
            expected = {VISION: (1, 2), CHAT: (3, 2)}
            stats = await wait_for_stats(sim, settled(expected), "every request to arrive")
        waits = {m: stats["models"][m]["slot_waits"] for m in (VISION, CHAT)}
        assert (waits, stats["slot_waits_total"]) == ({VISION: 2, CHAT: 2}, 4)

    async def test_requests_one_after_another_never_wait(self, simulator: SimulatorFactory) -> None:
        """Each request sent after the previous one answered finds the one slot free."""
        sim = await three_models(simulator, slow_prefill=False)
        async with aiohttp.ClientSession() as session:
            for model in (VISION, VISION, EMBED, EMBED):
                path, body = _request(model, hold=False)
                assert (await post_json(session, sim, path, body))[0] == 200
        stats = await sim_stats(sim)
        done = {m: stats["models"][m]["completed"] for m in (VISION, EMBED)}
        waits = {m: stats["models"][m]["slot_waits"] for m in (VISION, EMBED)}
        assert (done, waits) == ({VISION: 2, EMBED: 2}, {VISION: 0, EMBED: 0})

    async def test_reset_zeroes_slot_waits(self, simulator: SimulatorFactory) -> None:
        """POST /_sim/reset sets the per-model and run-wide slot waits back to 0."""
        sim = await three_models(simulator)
        async with sent(sim, {VISION: 2}):
            await wait_for_stats(
                sim,
                lambda s: settled({VISION: (1, 1)})(s) and s["slot_waits_total"] == 1,
                "both requests to arrive, one counted as a slot wait",
            )
            async with (
                aiohttp.ClientSession() as session,
                session.post(base_url(sim) + "/_sim/reset") as resp,
            ):
                stats = await resp.json()
        assert (stats["models"][VISION]["slot_waits"], stats["slot_waits_total"]) == (0, 0)
