"""Wires statistics into the proxy app: `/stats`, `/metrics` and the upstream poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import structlog
from aiohttp import web

from proxy.ollama_state import OllamaReader
from proxy.settings import ProxySettings
from proxy.stats.ledger import Stats
from proxy.stats.metrics import CONTENT_TYPE_LATEST, Metrics
from proxy.stats.records import QueueState
from proxy.stats.schema import StatsView

if TYPE_CHECKING:
    from proxy.relay.router import Router

__all__ = ["METRICS", "STATS", "QueueSource", "install", "router_sections"]

STATS = web.AppKey("lanes_stats", Stats)
METRICS = web.AppKey("lanes_metrics", Metrics)
_log = structlog.get_logger("proxy.relay.observe")
_TICK_S = 0.5  # how often the background task checks the queue for idle lanes


class QueueSource(Protocol):
    """What statistics need from the lane gate."""

    def snapshot(self) -> QueueState: ...


async def _watch(stats: Stats, gate: QueueSource, upstream: str, poll_s: float) -> None:
    """Poll Ollama every `poll_s` and the queue every tick, forever; never raises."""
    connector = aiohttp.TCPConnector(limit=2)
    async with aiohttp.ClientSession(connector=connector) as session:
        next_poll = 0.0
        while True:
            now = stats.clock()
            try:
                if now >= next_poll:
                    next_poll = now + poll_s
                    seen = await OllamaReader(session, upstream).state()
                    stats.upstream_polled(
                        reachable=seen.reachable,
                        version=seen.version,
                        models=None if seen.loaded is None else list(seen.loaded),
                    )
                stats.observe_queue(gate.snapshot())
            except Exception:  # a statistics bug must not end the poll
                _log.exception("stats_poll_failed")
            await asyncio.sleep(_TICK_S)


def router_sections(router: Router) -> Callable[[], dict[str, Any]]:
    """The `/stats` sections the router fills: `upstreams` and `pins`."""
    return lambda: {"upstreams": router.rows(), "pins": router.pin_rows()}


def install(
    app: web.Application,
    settings: ProxySettings,
    gate: QueueSource,
    *,
    extra: Callable[[], dict[str, Any]] | None = None,
) -> Stats:
    """Create the app's `Stats`, serve `/stats` and `/metrics`, start the background poll.

    Returns the `Stats`, which the proxy passes to its request path as the `Recorder`.
    Both routes are answered by the proxy itself and never wait for a lane.
    """
    specs = settings.upstream_specs()
    stats = Stats(
        upstream_url=specs[0].url,
        lanes=gate.snapshot().lanes,
        max_queue=settings.max_queue,
        reload_warn_ms=settings.reload_warn_ms,
        upstream_queue_warn_ms=settings.upstream_queue_warn_ms,
    )

    def view() -> StatsView:
        base = stats.view(gate.snapshot())
        return base if extra is None else base.model_copy(update=extra())

    metrics = Metrics(view, client_labels=settings.metrics_client_labels)
    stats.observers.append(metrics.observe)
    app[STATS] = stats
    app[METRICS] = metrics

    async def stats_handler(request: web.Request) -> web.Response:
        return web.json_response(text=view().model_dump_json())

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def watcher(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_watch(stats, gate, specs[0].url, settings.stats_poll_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.router.add_get("/stats", stats_handler)
    app.router.add_get("/metrics", metrics_handler)
    app.cleanup_ctx.append(watcher)
    return stats
