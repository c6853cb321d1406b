"""Fixtures that start the lane proxy on port 0."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from proxy.relay.app import GATE, create_app
from proxy.relay.gate import LaneGate
from proxy.relay.server import runner_options
from proxy.settings import ProxySettings
from proxy.stats.recorder import Recorder

__all__ = ["ProxyFactory", "gate_of", "proxy_settings"]

ProxyFactory = Callable[..., Awaitable[TestServer]]


def proxy_settings(upstream: str, lanes: int | str = 2, **overrides: Any) -> ProxySettings:
    """ProxySettings for tests: loopback, the given upstream and lanes, any overrides."""
    options: dict[str, Any] = {"listen": "127.0.0.1:0", "log_level": "warning"} | overrides
    return ProxySettings(upstream=upstream, lanes=lanes, **options)


def gate_of(server: TestServer) -> LaneGate:
    """The LaneGate of a proxy started by the `proxy` fixture."""
    return server.app[GATE]


@pytest.fixture(name="proxy")
def _proxy(aiohttp_server: AiohttpServer) -> ProxyFactory:
    """Factory: `prx = await proxy(upstream=sim_url, lanes=2, **settings)` starts one on port 0.

    Pass `recorder=` to observe the request path. The gate is `gate_of(prx)` (or
    `prx.app[GATE]`); the base URL is `str(prx.make_url("")).rstrip("/")`.
    """

    async def start(
        upstream: str, lanes: int | str = 2, *, recorder: Recorder | None = None, **overrides: Any
    ) -> TestServer:
        settings = proxy_settings(upstream, lanes, **overrides)
        app = create_app(settings, recorder=recorder)
        server: TestServer = await aiohttp_server(app, **runner_options(settings))
        return server

    return start
