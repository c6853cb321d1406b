"""The doctor's and installer's HTTP reads, against a real simulator and proxy on port 0."""

from __future__ import annotations

import aiohttp
import pytest

from proxy.install.checkup import (
    probe_ollama,
    probe_proxy,
    read_model_info,
    short_reason,
    wait_ready,
)
from proxy.ollama_state import OllamaError
from proxy.stats.client import StatsUnavailable
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.install.conftest import load
from tests.ports import reserved_port


def wrapped(cause: BaseException, message: str) -> OllamaError:
    """An OllamaError raised from `cause`, the way the shared reader raises it."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise OllamaError(message) from exc
    except OllamaError as error:
        return error


def stats_unavailable(inner: OllamaError) -> StatsUnavailable:
    """A StatsUnavailable raised from None inside `except OllamaError`, as the client does."""
    try:
        try:
            raise inner
        except OllamaError as exc:
            raise StatsUnavailable(str(exc)) from None
    except StatsUnavailable as error:
        return error


class TestShortReason:
    def test_a_timeout_is_timed_out(self) -> None:
        """A read that timed out reads "timed out", whatever wraps it."""
        assert short_reason(wrapped(TimeoutError(), "x did not answer")) == "timed out"

    def test_a_bad_status_is_named_by_its_code(self) -> None:
        """An answer with a bad status reads "HTTP <code>", also through the stats client."""
        error = OllamaError("http://h:1/stats answered HTTP 401")
        assert short_reason(error) == "HTTP 401"
        assert short_reason(stats_unavailable(error)) == "HTTP 401"

    def test_a_client_error_keeps_its_own_words(self) -> None:
        """A transport error is shown as its own message, without the wrapper's URL."""
        cause = aiohttp.ClientPayloadError("Response payload is not completed")
        assert short_reason(wrapped(cause, "x: broken")) == "Response payload is not completed"

    def test_other_errors_show_their_message_or_type(self) -> None:
        """A missing key reads as the key; an error without a message as its type."""
        assert short_reason(KeyError("lanes")) == "'lanes'"
        assert short_reason(ValueError()) == "ValueError"


class TestProbeOllama:
    async def test_version_and_loaded_models(self, simulator: SimulatorFactory) -> None:
        """A loaded model is listed with its context length, next to Ollama's version."""
        sim = await simulator()
        await load(base_url(sim), "llama3.2")
        async with aiohttp.ClientSession() as session:
            probe = await probe_ollama(session, base_url(sim))
        assert probe.version == "0.33.0-sim"
        assert [(m.name, m.context_length) for m in probe.models] == [("llama3.2:latest", 4096)]

    async def test_the_proxy_is_not_taken_for_ollama(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """An address that answers /stats like ollama-lanes is reported as the proxy."""
        sim = await simulator()
        prx = await proxy(upstream=base_url(sim), lanes=2)
        async with aiohttp.ClientSession() as session:
            probe = await probe_ollama(session, base_url(prx))
        assert (probe.is_proxy, probe.version) == (True, None)

    async def test_nothing_listening(self) -> None:
        """Nobody at the address: no version, and aiohttp's words for why."""
        with reserved_port() as port:
            dead = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                probe = await probe_ollama(session, dead)
        assert probe.version is None
        assert (probe.error or "").startswith("Cannot connect to host 127.0.0.1")


class TestReadModelInfo:
    async def test_by_model_name(self, simulator: SimulatorFactory) -> None:
        """Each known model's /api/show model_info, by name; an unknown model is left out."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            found = await read_model_info(session, base_url(sim), ["llama3.2:latest", "nope"])
        assert list(found) == ["llama3.2:latest"]
        assert found["llama3.2:latest"]["general.architecture"] == "llama"


class TestProbeProxy:
    async def test_lanes_and_version(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The proxy's configured lanes and its version come from /stats."""
        sim = await simulator()
        prx = await proxy(upstream=base_url(sim), lanes=3)
        async with aiohttp.ClientSession() as session:
            probe = await probe_proxy(session, base_url(prx))
        assert (probe.lanes, probe.error) == (3, None)

    async def test_token_protected(self, simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
        """Without the token the proxy answers 401; with it, its lanes are read."""
        sim = await simulator()
        prx = await proxy(upstream=base_url(sim), lanes=2, auth_token="s3cret")
        async with aiohttp.ClientSession() as session:
            refused = await probe_proxy(session, base_url(prx))
            allowed = await probe_proxy(session, base_url(prx), "s3cret")
        assert (refused.lanes, refused.error) == (None, "HTTP 401")
        assert allowed.lanes == 2


class TestWaitReady:
    async def test_ready(self, simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
        """Both answer and the proxy has the lanes asked for: nothing left to report."""
        sim = await simulator(lanes=2)
        prx = await proxy(upstream=base_url(sim), lanes=2)
        assert await wait_ready(base_url(sim), base_url(prx), 2, timeout_s=10) == []

    async def test_wrong_lanes_until_timeout(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A proxy with other lanes is reported once the wait runs out."""
        sim = await simulator(lanes=2)
        prx = await proxy(upstream=base_url(sim), lanes=2)
        problems = await wait_ready(base_url(sim), base_url(prx), 4, timeout_s=0.2)
        assert problems == [f"the proxy at {base_url(prx)} has 2 lanes, not 4"]

    @pytest.mark.parametrize("timeout_s", [0.0, 0.2])
    async def test_nothing_answers(self, timeout_s: float) -> None:
        """With nothing listening both are named after the timeout (even a zero one)."""
        with reserved_port() as port:
            dead = f"http://127.0.0.1:{port}"
            problems = await wait_ready(dead, dead, 2, timeout_s=timeout_s)
        assert len(problems) == 2
        assert problems[0].startswith(f"Ollama does not answer at {dead}")
        assert problems[1].startswith(f"the proxy does not answer at {dead}")
