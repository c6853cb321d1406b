"""`lanes serve` as a real process: settings from flags, env and file; SIGTERM/SIGINT drain."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from proxy.__main__ import main
from proxy.config import SettingsError, load_settings
from proxy.settings import ProxySettings
from tests.fixtures_sim import SimulatorFactory
from tests.relay.support import MODEL, base_url, sim_model_stats
from tests.waiting import PATIENCE_S, wait_for


@pytest.fixture(name="clean_env")
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No LANES_* variables; an empty config file to point --config at."""
    for name in list(os.environ):
        if name.startswith("LANES_"):
            monkeypatch.delenv(name)
    config = tmp_path / "config.toml"
    config.write_text("")
    return config


class TestSettings:
    def test_flags_env_and_file_in_rising_priority(
        self, clean_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The file sets lanes and max_queue, env overrides max_queue, a flag overrides lanes."""
        clean_env.write_text(
            "[serve]\nlanes = 3\nmax_queue = 7\naging_s = 5\n"
            '[serve.client_priorities]\nci = "batch"\n'
        )
        monkeypatch.setenv("LANES_MAX_QUEUE", "9")
        settings = load_settings(ProxySettings, {"lanes": 4}, config_file=clean_env)
        assert (settings.lanes, settings.max_queue, settings.aging_s) == (4, 9, 5.0)
        assert settings.client_priorities == {"ci": "batch"}
        assert (settings.listen, settings.upstream) == ("127.0.0.1:11435", "http://127.0.0.1:11434")

    def test_non_loopback_listen_needs_a_token(
        self, clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`--listen 0.0.0.0:…` exits with status 2 naming LANES_AUTH_TOKEN, unless it is set."""
        status = main(["serve", "--listen", "0.0.0.0:11435", "--config", str(clean_env)])
        assert status == 2
        assert "LANES_AUTH_TOKEN" in capsys.readouterr().err
        monkeypatch.setenv("LANES_AUTH_TOKEN", "s3cret")
        settings = load_settings(ProxySettings, {"listen": "0.0.0.0:11435"}, config_file=clean_env)
        assert settings.auth_token is not None

    @pytest.mark.parametrize("token", ["", "   "])
    def test_an_empty_token_is_an_invalid_setting(
        self,
        clean_env: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        token: str,
    ) -> None:
        """LANES_AUTH_TOKEN= (empty or blank) stops `lanes serve` with one line, exit 2, even
        on 0.0.0.0, where it used to pass the token guard and open the proxy."""
        monkeypatch.setenv("LANES_AUTH_TOKEN", token)
        status = main(["serve", "--listen", "0.0.0.0:11435", "--config", str(clean_env)])
        err = capsys.readouterr().err
        assert status == 2
        assert err.count("\n") == 1
        assert "auth-token" in err
        assert "the token is empty" in err

    def test_bad_flag_value_names_the_setting(self, clean_env: Path) -> None:
        """An invalid value is one SettingsError line that names flag, env and config key."""
        with pytest.raises(SettingsError, match=r"--lanes.*LANES_LANES"):
            load_settings(ProxySettings, {"lanes": 0}, config_file=clean_env)


class Served:
    """A `python -m proxy serve` child process and the JSON log lines it wrote."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.logs: list[dict[str, Any]] = []
        self.url = ""

    async def read_until(self, event: str) -> dict[str, Any]:
        assert self.proc.stderr is not None
        while True:
            line = await asyncio.wait_for(self.proc.stderr.readline(), 20)
            if not line:
                raise AssertionError(f"no {event!r} log line; got {self.logs}")
            try:
                entry: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            self.logs.append(entry)
            if entry.get("event") == event:
                return entry

    async def exit_status(self) -> int:
        await self.read_until("serve_stopped")
        return await asyncio.wait_for(self.proc.wait(), 20)


@pytest.fixture(name="serve")
async def _serve(clean_env: Path) -> AsyncIterator[Any]:
    """Factory: start `python -m proxy serve <flags>` on port 0 and wait until it listens."""
    children: list[asyncio.subprocess.Process] = []

    async def start(*flags: str) -> Served:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            str(clean_env),
            *flags,
            stderr=asyncio.subprocess.PIPE,
        )
        children.append(proc)
        served = Served(proc)
        started = await served.read_until("serve_started")
        served.url = "http://" + started["address"]
        return served

    yield start
    for proc in children:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def stream_generate(session: aiohttp.ClientSession, url: str, tokens: int) -> list[bytes]:
    body = {"model": MODEL, "prompt": "go", "options": {"num_predict": tokens}}
    async with session.post(url + "/api/generate", json=body) as resp:
        assert resp.status == 200
        return [line async for line in resp.content]


async def queued_in(url: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(url + "/stats") as resp:
        return bool((await resp.json())["queue"]["depth"] == 1)


async def test_sigterm_drains(simulator: SimulatorFactory, serve: Any) -> None:
    """SIGTERM: running requests finish, queued ones get 503, and the exit status is 0.

    1. One lane; a streamed generate of about a second holds it, a second request queues.
    2. SIGTERM arrives.
    3. The queued request is answered 503 with Retry-After at once.
    4. The running stream completes with its final `done` chunk.
    5. The process logs serve_stopped and exits 0.
    """
    sim = await simulator(decode_tps=100.0)
    served = await serve("--upstream", base_url(sim), "--lanes", "1", "--drain-timeout-s", "20")
    async with aiohttp.ClientSession() as session:
        running = asyncio.create_task(stream_generate(session, served.url, tokens=200))
        await wait_for(
            lambda: _sim_in_flight(sim), timeout=PATIENCE_S, what="the stream to run upstream"
        )
        chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        queued = asyncio.create_task(session.post(served.url + "/api/chat", json=chat))
        await wait_for(lambda: queued_in(served.url), timeout=PATIENCE_S, what="the chat to queue")
        served.proc.send_signal(signal.SIGTERM)
        refused = await queued
        assert refused.status == 503
        assert int(refused.headers["Retry-After"]) >= 1
        lines = await running
    assert json.loads(lines[-1])["done"] is True
    assert await served.exit_status() == 0
    stopped = served.logs[-1]
    assert (stopped["refused_queued"], stopped["cut_running"]) == (1, 0)


async def test_sigint_cuts_streams_after_the_drain_timeout(
    simulator: SimulatorFactory, serve: Any
) -> None:
    """SIGINT with a short drain timeout: a long stream is cut, its upstream request cancelled."""
    sim = await simulator(decode_tps=50.0)
    served = await serve("--upstream", base_url(sim), "--lanes", "1", "--drain-timeout-s", "0.3")
    async with aiohttp.ClientSession() as session:
        running = asyncio.create_task(stream_generate(session, served.url, tokens=2000))
        await wait_for(
            lambda: _sim_in_flight(sim), timeout=PATIENCE_S, what="the stream to run upstream"
        )
        served.proc.send_signal(signal.SIGINT)
        assert await served.exit_status() == 0
        with pytest.raises(aiohttp.ClientPayloadError):
            await running
    assert served.logs[-1]["cut_running"] == 1
    await wait_for(
        lambda: _sim_cancelled(sim), timeout=PATIENCE_S, what="the upstream request to be cancelled"
    )


async def _sim_in_flight(sim: Any) -> bool:
    return bool((await sim_model_stats(sim))["in_flight"] == 1)


async def _sim_cancelled(sim: Any) -> bool:
    stats = await sim_model_stats(sim)
    return bool(stats["cancellations"] == 1 and stats["in_flight"] == 0)


async def test_busy_port_exits_unavailable(clean_env: Path) -> None:
    """A port already in use is one `listen_failed` log line and exit status 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--config",
            str(clean_env),
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 3
    assert b"listen_failed" in err


async def _host_row(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url + "/stats") as resp:
        row: dict[str, Any] = (await resp.json())["upstreams"]["default"]
        return row


async def test_sighup_reloads_lanes_without_losing_a_request(
    simulator: SimulatorFactory, serve: Any, clean_env: Path
) -> None:
    """SIGHUP re-reads the config file and the lane map; queued and running requests stay.

    1. The config sets lanes = 1 by hand, and model_lanes nothing; 6 chats queue behind it.
    2. The file is edited to lanes = 3 and SIGHUP sent while they wait.
    3. /stats shows the cap of 3 (`settings_reloaded` is logged), the simulator's peak reaches
       3, and all six requests complete.
    """
    sim = await simulator(lanes=3, decode_tps=300.0)
    await asyncio.to_thread(clean_env.write_text, "[serve]\nlanes = 1\nhealth_interval_s = 0.2\n")
    served = await serve("--upstream", base_url(sim))
    assert (await _host_row(served.url))["cap"] == 1
    async with aiohttp.ClientSession() as session:
        running = [asyncio.create_task(stream_generate(session, served.url, 60)) for _ in range(6)]
        await wait_for(
            lambda: _queued(served.url, 5), timeout=PATIENCE_S, what="five chats to queue"
        )
        await asyncio.to_thread(
            clean_env.write_text, "[serve]\nlanes = 3\nhealth_interval_s = 0.2\n"
        )
        served.proc.send_signal(signal.SIGHUP)
        reloaded = await served.read_until("settings_reloaded")
        results = await asyncio.gather(*running)
    assert reloaded["needs_restart"] == []
    assert all(json.loads(lines[-1])["done"] for lines in results)
    assert (await _host_row(served.url))["cap"] == 3
    assert (await sim_model_stats(sim))["max_in_flight"] == 3
    served.proc.send_signal(signal.SIGTERM)
    assert await served.exit_status() == 0


async def _queued(url: str, depth: int) -> bool:
    async with aiohttp.ClientSession() as session, session.get(url + "/stats") as resp:
        return bool((await resp.json())["queue"]["depth"] == depth)
