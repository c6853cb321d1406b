"""Fixtures that start the simulated Ollama on port 0."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.simulator.app import create_app
from proxy.simulator.settings import SimulatorSettings

__all__ = ["FAST", "HOLD_TOKENS", "SimulatorFactory", "base_url", "sim_settings", "sim_stats"]

SimulatorFactory = Callable[..., Awaitable[TestServer]]

# Fast defaults for tests: loads, prefill and decode take a few milliseconds at most.
FAST: dict[str, Any] = {
    "load_seconds": 0.05,
    "prefill_tps": 50_000.0,
    "decode_tps": 2_000.0,
    "lanes": 1,
    "max_queue": 512,
    "max_loaded_models": 3,
    "seed": 7,
    "batch_alpha": 0.7,
    "keep_alive_s": 300.0,
    "default_num_ctx": 4096,
}

# num_predict for a request that holds its slot (or lane) until the test hangs up: 50 s of
# decoding even at the fast default, so it never ends on its own while a test looks.
HOLD_TOKENS = 100_000


def sim_settings(**overrides: Any) -> SimulatorSettings:
    """SimulatorSettings with the fast test defaults, ignoring env and config files."""
    return SimulatorSettings(**(FAST | overrides))


def base_url(server: TestServer) -> str:
    """The server's base URL without a trailing slash."""
    return str(server.make_url("")).rstrip("/")


async def sim_stats(server: TestServer) -> dict[str, Any]:
    """One read of the simulator's GET /_sim/stats."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url(server) + "/_sim/stats") as resp,
    ):
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
        return data


@pytest.fixture(name="simulator")
def _simulator(aiohttp_server: AiohttpServer) -> SimulatorFactory:
    """Factory: `sim = await simulator(lanes=2, decode_tps=500)` starts one on 127.0.0.1:0."""

    async def start(**overrides: Any) -> TestServer:
        server: TestServer = await aiohttp_server(create_app(sim_settings(**overrides)))
        return server

    return start
