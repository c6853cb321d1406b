"""create_app(settings): the proxy's aiohttp application, its typed state and its resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from proxy.lanes.queue import LaneQueue
from proxy.relay import observe
from proxy.relay.gate import LaneGate
from proxy.relay.handlers import ProxyHandler
from proxy.relay.middleware import exchange_middleware
from proxy.relay.router import Router, build_hosts
from proxy.relay.upstream import open_session
from proxy.settings import ProxySettings
from proxy.stats.recorder import Recorder

__all__ = ["GATE", "RECORDER", "ROUTER", "SESSION", "SETTINGS", "create_app", "make_gate"]

SETTINGS = web.AppKey("settings", ProxySettings)
GATE = web.AppKey("gate", LaneGate)
RECORDER = web.AppKey[Recorder]("recorder")
SESSION = web.AppKey("session", aiohttp.ClientSession)
ROUTER = web.AppKey("router", Router)


def make_gate(settings: ProxySettings) -> LaneGate:
    """The lane gate `settings` describe: one fair queue, late-bound onto the upstreams."""
    queue = LaneQueue(
        build_hosts(settings.upstream_specs()),
        max_queue=settings.max_queue,
        aging_s=settings.aging_s,
        affinity_wait_s=settings.affinity_wait_s,
    )
    max_wait = {
        "interactive": settings.max_wait_interactive_s,
        "normal": settings.max_wait_normal_s,
        "batch": settings.max_wait_batch_s,
    }
    return LaneGate(queue, max_wait_s=max_wait)


def create_app(settings: ProxySettings, *, recorder: Recorder | None = None) -> web.Application:
    """Build the proxy app; the upstream session opens at startup and closes at cleanup."""
    app = web.Application(
        client_max_size=settings.max_body_mb * 2**20,
        middlewares=[exchange_middleware(settings)],
    )
    gate = make_gate(settings)
    router = Router(settings, gate.queue, gate)
    app[SETTINGS] = settings
    app[GATE] = gate
    app[ROUTER] = router
    if recorder is None:  # statistics: /stats, /metrics and the recorder behind them
        recorder = observe.install(app, settings, gate, extra=observe.router_sections(router))
    app[RECORDER] = recorder
    handler = ProxyHandler(settings, gate, recorder)

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        async with open_session(settings) as session:
            app[SESSION] = session
            router.open(session)
            handler.router = router
            watch = asyncio.create_task(router.watch())
            yield
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def refuse_queued(app: web.Application) -> None:
        gate.close()

    app.cleanup_ctx.append(upstream_session)
    app.on_shutdown.append(refuse_queued)
    # Registered last: explicit routes (observe's /stats, /metrics) are matched first.
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return app
