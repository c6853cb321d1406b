"""`lanes stats` and `lanes top` against a real proxy, run in-process."""

from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import pytest
from rich.console import Console

from proxy.__main__ import main
from proxy.stats.tables import show_stats
from proxy.stats.top import run_top
from proxy.status import ExitStatus
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url


async def _one_request(url: str) -> None:
    body = {"model": "llama3.2", "prompt": "hi", "options": {"num_predict": 3}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/api/generate", json=body) as resp,
    ):
        assert resp.status == 200
        await resp.read()


async def test_stats_json_and_tables(
    simulator: SimulatorFactory, proxy: ProxyFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lanes stats --json` prints the document; without it, readable field rows."""
    sim = await simulator()
    prx = await proxy(base_url(sim), lanes=2)
    url = base_url(prx)
    await _one_request(url)
    assert await asyncio.to_thread(main, ["stats", "--url", url, "--json"]) == ExitStatus.SUCCESS
    out = capsys.readouterr().out  # access-log lines may come first
    doc = json.loads(out[out.index("{\n") :])
    assert doc["lanes"]["configured"] == 2
    assert doc["counters"]["completed"] == 1
    assert await asyncio.to_thread(main, ["stats", "--url", url]) == ExitStatus.SUCCESS
    out = capsys.readouterr().out
    assert "lanes.configured" in out
    assert "counters.completed" in out
    assert "llama3.2" in out


async def test_stats_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    """No proxy: one line on stderr and exit status 3."""
    console = Console(file=io.StringIO())
    status = await show_stats("http://127.0.0.1:9", console)
    assert status == ExitStatus.UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith("lanes: http://127.0.0.1:9/stats did not answer")
    assert err.count("\n") == 1


async def test_top_draws_frames_until_cancelled(
    simulator: SimulatorFactory, proxy: ProxyFactory
) -> None:
    """`lanes top` off a terminal draws frames of the live proxy and stops when cancelled."""
    sim = await simulator()
    prx = await proxy(base_url(sim), lanes=2)
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None, force_terminal=False)
    task = asyncio.create_task(run_top(base_url(prx), console=console))
    for _ in range(100):
        await asyncio.sleep(0.05)
        if "lanes 0/2 busy" in out.getvalue():
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "lanes 0/2 busy" in out.getvalue()
