"""`lanes tune`'s reads: Ollama's facts, its environment, a proxy's upstream, the request."""

from __future__ import annotations

import pytest

from proxy.install.tune_sweep import (
    ollama_env,
    read_ollama_facts,
    representative_request,
    upstream_of,
)
from proxy.ollama_state import OllamaError
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.install.conftest import load
from tests.machine.fakes import Fakes
from tests.ports import reserved_port


class TestReadOllamaFacts:
    async def test_version_model_info_and_loaded_context(self, simulator: SimulatorFactory) -> None:
        """The version, the model's architecture and the context it is loaded with."""
        sim = await simulator()
        await load(base_url(sim), "llama3.2")
        facts = await read_ollama_facts(base_url(sim), "llama3.2:latest")
        assert facts.version == "0.33.0-sim"
        assert facts.model_info["general.architecture"] == "llama"
        assert facts.loaded_context == 4096

    async def test_a_model_not_loaded_has_no_context(self, simulator: SimulatorFactory) -> None:
        """A model that is not loaded has no loaded context; an unknown one no model_info."""
        sim = await simulator()
        facts = await read_ollama_facts(base_url(sim), "nope")
        assert (facts.loaded_context, facts.model_info) == (None, {})

    async def test_nothing_listening(self) -> None:
        """Nobody at Ollama's address is an OllamaError."""
        with reserved_port() as port, pytest.raises(OllamaError):
            await read_ollama_facts(f"http://127.0.0.1:{port}", "llama3.2")


class TestUpstreamOf:
    async def test_the_proxys_upstream(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A running proxy's /stats names the Ollama it forwards to."""
        sim = await simulator()
        prx = await proxy(upstream=base_url(sim), lanes=2)
        assert base_url(sim) == await upstream_of(base_url(prx))


class TestOllamaEnv:
    def test_the_simulator_has_no_environment(self, fakes: Fakes) -> None:
        """A simulated Ollama takes its slots from a flag, and that is what is said."""
        env, seen = ollama_env("http://127.0.0.1:11434", "0.33.0-sim", fakes.machine("linux"))
        assert (env, seen) == ({}, "simulated Ollama: its slots come from `lanes simulate --lanes`")

    def test_unreadable(self, fakes: Fakes) -> None:
        """No readable process and no unit: nothing known, and why."""
        env, seen = ollama_env("http://127.0.0.1:11434", "0.12.3", fakes.machine("linux"))
        assert env == {}
        assert seen == (
            "could not read Ollama's environment (no readable Ollama process and no ollama.service)"
        )

    def test_unset_num_parallel_is_ollamas_default(self, fakes: Fakes) -> None:
        """NUM_PARALLEL absent from the unit's environment is Ollama's default for its version."""
        fakes.answer("systemctl", "show", stdout="LoadState=loaded\nEnvironment=OLLAMA_HOST=x\n")
        env, seen = ollama_env("http://127.0.0.1:11434", "0.12.3", fakes.machine("linux"))
        assert env == {"OLLAMA_HOST": "x", "OLLAMA_NUM_PARALLEL": "1"}
        assert (
            seen == "OLLAMA_NUM_PARALLEL is unset (so 1), read from systemctl show ollama.service"
        )


class TestRepresentativeRequest:
    def test_the_miners_request(self) -> None:
        """The miner's chat body with its pinned context, for the model asked for."""
        body = representative_request("llama3.2")
        assert (body["model"], body["options"]["num_ctx"]) == ("llama3.2", 8192)
        assert body["messages"]

    def test_the_miners_model_by_default(self) -> None:
        """Without a model the miner's default model is tuned."""
        assert representative_request(None)["model"] == "qwen2.5:7b-instruct"
