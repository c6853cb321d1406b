"""What /api/show and /api/tags say about each model: capabilities, architecture, model_info."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.install.kv_cache import kv_bytes_per_token
from proxy.simulator.catalog import ModelSpec
from proxy.simulator.facts import parameter_count
from tests.fixtures_sim import SimulatorFactory, base_url


async def show(sim: TestServer, model: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url(sim) + "/api/show", json={"model": model}) as resp,
    ):
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json()
        return doc


async def tags(sim: TestServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(base_url(sim) + "/api/tags") as resp:
        return {row["name"]: row for row in (await resp.json())["models"]}


class TestShow:
    @pytest.mark.parametrize(
        ("model", "capabilities", "architecture"),
        [
            ("qwen2.5:7b-instruct", ["completion", "tools"], "qwen2"),
            ("llama3.2:latest", ["completion", "tools"], "llama"),
            ("qwen3-vl:8b", ["completion", "vision", "tools"], "qwen3vl"),
            ("all-minilm:latest", ["embedding"], "bert"),
        ],
    )
    async def test_capabilities_and_architecture(
        self, simulator: SimulatorFactory, model: str, capabilities: list[str], architecture: str
    ) -> None:
        """Each default model shows Ollama's capabilities and general.architecture, and its
        details name the family."""
        doc = await show(await simulator(), model)
        shown = (doc["capabilities"], doc["model_info"]["general.architecture"])
        assert (capabilities, architecture) == shown
        assert (architecture, [architecture]) == (
            doc["details"]["family"],
            doc["details"]["families"],
        )

    async def test_spec_architecture_is_shown(self, simulator: SimulatorFactory) -> None:
        """A `--model NAME:arch=...,vision` model shows that architecture and vision."""
        doc = await show(await simulator(models=["my-vl:arch=qwen3vl,vision"]), "my-vl")
        assert (
            doc["model_info"]["general.architecture"],
            doc["capabilities"],
        ) == ("qwen3vl", ["completion", "vision", "tools"])

    async def test_model_info_has_the_shape_keys(self, simulator: SimulatorFactory) -> None:
        """qwen3-vl:8b's model_info carries the keys Ollama reports under its architecture."""
        info = (await show(await simulator(), "qwen3-vl:8b"))["model_info"]
        expected = {
            "general.architecture": "qwen3vl",
            "general.parameter_count": 8_800_000_000,
            "general.quantization_version": 2,
            "qwen3vl.attention.head_count": 32,
            "qwen3vl.attention.head_count_kv": 8,
            "qwen3vl.attention.key_length": 128,
            "qwen3vl.attention.value_length": 128,
            "qwen3vl.block_count": 36,
            "qwen3vl.context_length": 262144,
            "qwen3vl.embedding_length": 4096,
        }
        assert expected == info

    async def test_embedding_model_info_has_a_pooling_type(
        self, simulator: SimulatorFactory
    ) -> None:
        """An embedding model reports `<arch>.pooling_type` and no head_count_kv (bert)."""
        info = (await show(await simulator(), "all-minilm"))["model_info"]
        assert (info["bert.pooling_type"], "bert.attention.head_count_kv" in info) == (1, False)

    @pytest.mark.parametrize(
        ("model", "per_token"),
        [
            # layers × KV heads × (key + value length) × 2 bytes (f16)
            ("qwen2.5:7b-instruct", 28 * 4 * (128 + 128) * 2),
            ("llama3.2:latest", 28 * 8 * (128 + 128) * 2),
            ("qwen3-vl:8b", 36 * 8 * (128 + 128) * 2),
            ("all-minilm:latest", 6 * 12 * (32 + 32) * 2),
        ],
    )
    async def test_kv_cache_arithmetic_reads_it(
        self, simulator: SimulatorFactory, model: str, per_token: int
    ) -> None:
        """The doctor's KV-cache arithmetic finds its numbers in each model's model_info."""
        info = (await show(await simulator(), model))["model_info"]
        assert per_token == kv_bytes_per_token(info, None)


class TestTags:
    async def test_capabilities_match_show(self, simulator: SimulatorFactory) -> None:
        """/api/tags lists each model with the capabilities and details /api/show gives."""
        sim = await simulator()
        rows = await tags(sim)
        for name, row in rows.items():
            doc = await show(sim, name)
            assert (doc["capabilities"], doc["details"]) == (row["capabilities"], row["details"])
        assert len(rows) == 4


class TestParameterCount:
    @pytest.mark.parametrize(
        ("size", "count"), [("7.6B", 7_600_000_000), ("23M", 23_000_000), ("?", 0)]
    )
    def test_from_parameter_size(self, size: str, count: int) -> None:
        """general.parameter_count follows the parameter size ("7.6B", "23M"); 0 if unreadable."""
        assert count == parameter_count(ModelSpec(name="m", parameter_size=size))
