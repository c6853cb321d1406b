"""create_app(settings): the proxy's aiohttp application, its typed state and its resources."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from types import MappingProxyType

import aiohttp
from aiohttp import web

from proxy.dashboard.feed import Feed
from proxy.dashboard.frames import QUEUE_ROWS, frame, queue_feed
from proxy.dashboard.notifier import ChangeNotifier
from proxy.dashboard.routes import Dashboard
from proxy.dashboard.sessions import SessionKeys
from proxy.lanes.placement import Host
from proxy.lanes.queue import Fairness, LaneQueue
from proxy.relay.gate import LaneGate
from proxy.relay.handler import Handler
from proxy.relay.inflight import InFlight
from proxy.relay.mapper import LaneMapper
from proxy.relay.middleware import add_cors_headers, exchange_middleware
from proxy.relay.router import Router
from proxy.relay.upstream import open_session
from proxy.relay.watch import watch
from proxy.settings import ProxySettings
from proxy.stats.ledger import Ledger
from proxy.stats.metrics import CONTENT_TYPE_LATEST, Metrics
from proxy.stats.queue_list import queue_list
from proxy.stats.recorder import Recorder, Tee
from proxy.stats.schema import StatsView
from proxy.stats.view import build_view
from proxy.upstream_specs import UpstreamSpec

__all__ = [
    "FEED",
    "GATE",
    "INFLIGHT",
    "LEDGER",
    "MAPPER",
    "METRICS",
    "ROUTER",
    "SESSION",
    "SETTINGS",
    "apply_settings",
    "build_hosts",
    "create_app",
    "make_gate",
    "make_ledger",
]

SETTINGS = web.AppKey("settings", ProxySettings)
GATE = web.AppKey("gate", LaneGate)
INFLIGHT = web.AppKey("inflight", InFlight)
MAPPER = web.AppKey("mapper", LaneMapper)
LEDGER = web.AppKey("ledger", Ledger)
METRICS = web.AppKey("metrics", Metrics)
SESSION = web.AppKey("session", aiohttp.ClientSession)
ROUTER = web.AppKey("router", Router)
FEED = web.AppKey("feed", Feed)


def build_hosts(specs: list[UpstreamSpec]) -> list[Host]:
    """One `Host` per spec: its cap (lanes set by hand) or auto, and its model_lanes."""
    return [
        Host(
            spec.name,
            None if spec.lanes == "auto" else spec.lanes,
            weight=spec.weight,
            max_loaded=spec.max_loaded_models,
            overrides=spec.model_lanes,
        )
        for spec in specs
    ]


def fairness_of(settings: ProxySettings) -> Fairness:
    """How turns are shared inside a class (queue rule 4)."""
    return Fairness(
        policy=settings.fairness,
        w_in=settings.w_in,
        w_out=settings.w_out,
        weights=MappingProxyType(dict(settings.client_weights)),
        forget_s=10 * settings.aging_s,
    )


def make_gate(settings: ProxySettings) -> LaneGate:
    """The lane gate `settings` describe: one fair queue, late-bound onto the upstreams."""
    queue = LaneQueue(
        build_hosts(settings.upstream_specs()),
        max_queue=settings.max_queue,
        aging_s=settings.aging_s,
        affinity_wait_s=settings.affinity_wait_s,
        fairness=fairness_of(settings),
    )
    max_wait = {
        "interactive": settings.max_wait_interactive_s,
        "normal": settings.max_wait_normal_s,
        "batch": settings.max_wait_batch_s,
    }
    return LaneGate(queue, max_wait_s=max_wait)


def make_ledger(settings: ProxySettings, gate: LaneGate) -> Ledger:
    """The statistics ledger for `settings`' hosts and warning thresholds."""
    return Ledger(
        hosts={spec.name: spec.url for spec in settings.upstream_specs()},
        lanes=gate.lanes,
        max_queue=settings.max_queue,
        reload_warn_ms=settings.reload_warn_ms,
        upstream_queue_warn_ms=settings.upstream_queue_warn_ms,
        w_in=settings.w_in,
        w_out=settings.w_out,
        knees={spec.name: spec.knee for spec in settings.upstream_specs()},
        verdict_window_s=settings.verdict_window_s,
    )


def apply_settings(app: web.Application, fresh: ProxySettings) -> list[str]:
    """Apply reloaded settings to a running app; returns the settings that need a restart.

    Each host's lanes (a cap or auto), model_lanes, num_parallel and knee (tune_knee) change at
    once, and the lane map is read again at the next poll; the fair-share policy and weights
    change at once (counters are kept); queued and running requests stay as they are.
    """
    old = app[SETTINGS]
    changed_hosts = app[MAPPER].configure(fresh.upstream_specs())
    app[GATE].queue.service.fairness = fairness_of(fresh)
    app[LEDGER].knees.update({spec.name: spec.knee for spec in fresh.upstream_specs()})
    live = {"lanes", "model_lanes", "num_parallel", "upstreams", "tune_knee"}
    live |= {"fairness", "w_in", "w_out", "client_weights"}
    restart = [
        name
        for name in type(fresh).model_fields
        if name not in live and getattr(old, name) != getattr(fresh, name)
    ]
    if changed_hosts:
        restart.append(f"upstreams ({', '.join(changed_hosts)})")
    return restart


def create_app(settings: ProxySettings, *, recorder: Recorder | None = None) -> web.Application:
    """Build the proxy app; the upstream session opens at startup and closes at cleanup.

    Statistics always record into the app's Ledger; `recorder` also hears every event. The
    dashboard's feed hears when a request queues, gets a lane or ends.
    """
    gate = make_gate(settings)
    router = Router(settings, gate.queue, gate)
    mapper = LaneMapper(gate.queue, gate, settings.upstream_specs())
    ledger = make_ledger(settings, gate)

    def view() -> StatsView:
        return build_view(
            ledger,
            gate.snapshot(),
            time.monotonic(),
            hosts=router.host_counters(),
            pins=router.pin_rows(),
        )

    def feed_frame() -> bytes:
        queue = gate.queue
        waiting = queue_feed(
            queue.summary(QUEUE_ROWS),
            lanes=queue.lanes,
            busy=queue.busy,
            policy=queue.service.fairness.policy,
            now=time.monotonic(),
        )
        return frame(view(), waiting)

    metrics = Metrics(view, client_labels=settings.metrics_client_labels)
    ledger.observers.append(metrics.observe)
    feed = Feed(feed_frame)
    dashboard = Dashboard(feed, SessionKeys())
    sink = ChangeNotifier(ledger if recorder is None else Tee(ledger, recorder), feed.changed)
    handler = Handler(settings, gate, router, sink, mapper)
    inflight = InFlight()
    app = web.Application(
        client_max_size=settings.max_body_mb * 2**20,
        middlewares=[exchange_middleware(settings, sink, inflight, admits=dashboard.admits)],
    )
    app[SETTINGS], app[GATE], app[ROUTER], app[INFLIGHT] = settings, gate, router, inflight
    app[MAPPER] = mapper
    app[LEDGER], app[METRICS], app[FEED] = ledger, metrics, feed

    async def stats_handler(request: web.Request) -> web.Response:
        return web.json_response(text=view().model_dump_json())

    async def queue_handler(request: web.Request) -> web.Response:
        queue = gate.queue
        doc = queue_list(
            queue.waiting(),
            lanes=queue.lanes,
            busy=queue.busy,
            policy=queue.service.fairness.policy,
            now=time.monotonic(),
            client=request.query.get("client"),
        )
        return web.json_response(text=doc.model_dump_json())

    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        async with open_session(settings) as session:
            app[SESSION] = session
            router.open(session)
            mapper.open(router.readers)
            task = asyncio.create_task(
                watch(router, mapper, gate, ledger, interval_s=settings.health_interval_s)
            )
            yield
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await mapper.close()

    async def refuse_queued(app: web.Application) -> None:
        gate.close()

    app.on_response_prepare.append(add_cors_headers)
    app.cleanup_ctx.append(upstream_session)
    app.on_shutdown.append(refuse_queued)
    app.router.add_get("/stats", stats_handler)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/queue", queue_handler)
    dashboard.attach(app)
    # Registered last: the proxy's own routes above are matched first.
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return app
