"""The doctor's and installer's HTTP reads, against a real simulator and proxy on port 0."""

from __future__ import annotations

import aiohttp
import pytest

from proxy.install.checkup import (
    not_following,
    probe_ollama,
    probe_proxy,
    read_installed,
    read_model_facts,
    short_reason,
    wait_ready,
)
from proxy.install.doctor_facts import ProxyHost, ProxyProbe
from proxy.ollama_state import OllamaError
from proxy.stats.client import StatsUnavailable
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.install.conftest import LINUX_PROC, load
from tests.ports import reserved_port
from tests.waiting import PATIENCE_S

OLLAMA = "http://127.0.0.1:11434"
PROXY = "http://127.0.0.1:11435"


def proxy_seeing(*hosts: ProxyHost) -> ProxyProbe:
    """A proxy answering /stats with these upstreams."""
    return ProxyProbe(PROXY, lanes=2, version="0.1.0", hosts=hosts)


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


class TestReadModelFacts:
    async def test_by_model_name(self, simulator: SimulatorFactory) -> None:
        """Each known model's /api/show facts, by name; an unknown model is left out."""
        sim = await simulator()
        async with aiohttp.ClientSession() as session:
            names = ["llama3.2:latest", "nope", "all-minilm:latest"]
            found = await read_model_facts(session, base_url(sim), names)
        assert list(found) == ["llama3.2:latest", "all-minilm:latest"]
        assert found["llama3.2:latest"].model_info["general.architecture"] == "llama"
        assert "embedding" in found["all-minilm:latest"].capabilities

    async def test_installed_names(self, simulator: SimulatorFactory) -> None:
        """/api/tags gives the installed models' names; nothing answering gives none."""
        sim = await simulator()
        with reserved_port() as port:
            async with aiohttp.ClientSession() as session:
                names = await read_installed(session, base_url(sim))
                none = await read_installed(session, f"http://127.0.0.1:{port}")
        assert ("qwen3-vl:8b" in names, none) == (True, [])


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
        (host,) = probe.hosts
        assert (host.name, host.url, host.cap) == ("default", base_url(sim), 3)

    async def test_token_protected(self, simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
        """Without the token the proxy answers 401; with it, its lanes are read."""
        sim = await simulator()
        prx = await proxy(upstream=base_url(sim), lanes=2, auth_token="s3cret")
        async with aiohttp.ClientSession() as session:
            refused = await probe_proxy(session, base_url(prx))
            allowed = await probe_proxy(session, base_url(prx), "s3cret")
        assert (refused.lanes, refused.error) == (None, "HTTP 401")
        assert allowed.lanes == 2


class TestNotFollowing:
    def test_following(self) -> None:
        """NUM_PARALLEL read from the running Ollama at the value asked for: nothing to say."""
        host = ProxyHost("default", OLLAMA, None, 4, "ollama-env", "/proc/1/environ")
        assert not_following(proxy_seeing(host), OLLAMA, 4) is None

    def test_each_reason(self) -> None:
        """Another value, a cap, a num_parallel setting, an unreadable value: each is said."""
        found = [
            not_following(proxy_seeing(ProxyHost("default", OLLAMA, *row)), OLLAMA, 4)
            for row in [
                (None, 2, "ollama-env", "/proc/1/environ"),
                (3, 2, "ollama-env", "/proc/1/environ"),
                (None, 4, "config", "num_parallel = 4"),
                (None, None, "assumed", "no ollama.service"),
            ]
        ]
        assert found == [
            f"the proxy at {PROXY} has OLLAMA_NUM_PARALLEL = 2 (ollama-env: /proc/1/environ), "
            "not 4",
            f"the proxy at {PROXY} has lanes = 3 set by hand for default, so it does not follow "
            "OLLAMA_NUM_PARALLEL",
            f"the proxy at {PROXY} uses num_parallel = 4 from its settings for default instead "
            "of Ollama's OLLAMA_NUM_PARALLEL: remove it there",
            f"the proxy at {PROXY} cannot read Ollama's OLLAMA_NUM_PARALLEL (no ollama.service), "
            "so it gives each model 1 lane",
        ]

    def test_another_upstream(self) -> None:
        """A proxy with two upstreams, neither Ollama's, is named as not forwarding there."""
        hosts = [ProxyHost(n, f"http://{n}:11434", None, 1, "ollama-env") for n in ("a", "b")]
        assert not_following(proxy_seeing(*hosts), OLLAMA, 1) == (
            f"the proxy at {PROXY} does not forward to {OLLAMA}"
        )


@LINUX_PROC
class TestWaitReady:
    async def test_ready_once_the_proxy_follows(
        self, sim_process: str, proxy: ProxyFactory
    ) -> None:
        """An auto proxy over Ollama with NUM_PARALLEL 2: ready once it has read that value."""
        prx = await proxy(upstream=sim_process, lanes="auto")
        assert await wait_ready(sim_process, base_url(prx), 2, timeout_s=PATIENCE_S) == []

    async def test_another_num_parallel_until_timeout(
        self, sim_process: str, proxy: ProxyFactory
    ) -> None:
        """Waiting for NUM_PARALLEL 4 over an Ollama running 2 reports what the proxy read."""
        prx = await proxy(upstream=sim_process, lanes="auto")
        assert await wait_ready(sim_process, base_url(prx), 2, timeout_s=PATIENCE_S) == []
        (problem,) = await wait_ready(sim_process, base_url(prx), 4, timeout_s=0.2)
        assert problem.startswith(
            f"the proxy at {base_url(prx)} has OLLAMA_NUM_PARALLEL = 2 (ollama-env: /proc/"
        )
        assert problem.endswith(", not 4")

    @pytest.mark.parametrize("timeout_s", [0.0, 0.2])
    async def test_nothing_answers(self, timeout_s: float) -> None:
        """With nothing listening both are named after the timeout (even a zero one)."""
        with reserved_port() as port:
            dead = f"http://127.0.0.1:{port}"
            problems = await wait_ready(dead, dead, 2, timeout_s=timeout_s)
        assert len(problems) == 2
        assert problems[0].startswith(f"Ollama does not answer at {dead}")
        assert problems[1].startswith(f"the proxy does not answer at {dead}")
