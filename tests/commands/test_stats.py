"""`lanes stats` in-process against a real proxy: JSON or tables, and its exit statuses."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from proxy.__main__ import main
from proxy.status import ExitStatus
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url


async def one_request(url: str) -> None:
    """One completed /api/generate through the proxy at `url`."""
    body = {"model": "llama3.2", "prompt": "hi", "options": {"num_predict": 3}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/api/generate", json=body) as resp,
    ):
        assert resp.status == 200
        await resp.read()


async def lanes(*argv: str) -> int:
    """Run `lanes ARGV` in a thread: it runs its own event loop, the servers run on ours."""
    return await asyncio.to_thread(main, list(argv))


class TestStatsCommand:
    async def test_json(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """`lanes stats --json` prints the /stats document."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=2)
        await one_request(base_url(prx))
        assert await lanes("stats", "--url", base_url(prx), "--json") == ExitStatus.SUCCESS
        out = capsys.readouterr().out  # access-log lines may come first
        doc = json.loads(out[out.index("{\n") :])
        assert doc["lanes"]["configured"] == 2
        assert doc["counters"]["completed"] == 1

    async def test_the_token_comes_from_the_environment(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Against a proxy with a token, `lanes stats` sends LANES_AUTH_TOKEN; without it, 401."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=2, auth_token="s3cret")
        assert await lanes("stats", "--url", base_url(prx), "--json") == ExitStatus.UNAVAILABLE
        assert "HTTP 401" in capsys.readouterr().err
        monkeypatch.setenv("LANES_AUTH_TOKEN", "s3cret")
        assert await lanes("stats", "--url", base_url(prx), "--json") == ExitStatus.SUCCESS
        out = capsys.readouterr()
        assert '"configured": 2' in out.out
        assert "s3cret" not in out.out + out.err

    async def test_tables(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without --json, `lanes stats` prints readable field rows and the models seen."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=2)
        await one_request(base_url(prx))
        assert await lanes("stats", "--url", base_url(prx)) == ExitStatus.SUCCESS
        out = capsys.readouterr().out
        assert "lanes.configured" in out
        assert "counters.completed" in out
        assert "llama3.2" in out

    async def test_the_address_comes_from_the_config_file(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Without --url, the proxy is found at the config file's [serve] listen address."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=3)
        config = tmp_path / "config.toml"
        config.write_text(f'[serve]\nlisten = "127.0.0.1:{prx.port}"\n', encoding="utf-8")
        assert await lanes("stats", "--config", str(config), "--json") == ExitStatus.SUCCESS
        out = capsys.readouterr().out
        assert json.loads(out[out.index("{\n") :])["lanes"]["configured"] == 3

    async def test_unreachable(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No proxy at the address: one line on stderr and exit status 3."""
        assert await lanes("stats", "--url", "http://127.0.0.1:9") == ExitStatus.UNAVAILABLE
        assert capsys.readouterr().err.startswith("lanes: http://127.0.0.1:9/stats did not answer")
