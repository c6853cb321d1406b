"""The request path in one straight line: classify, then a lane if it needs one, then relay."""

from __future__ import annotations

import time

from aiohttp import web

from proxy.relay.body import RequestBody
from proxy.relay.classify import Route, Rules, classify, needs_body
from proxy.relay.gate import LaneGate, Lease
from proxy.relay.mapper import LaneMapper
from proxy.relay.outcome import Exchange
from proxy.relay.pinning import encode_document
from proxy.relay.router import Router
from proxy.relay.tap import Tap
from proxy.settings import ProxySettings
from proxy.stats.recorder import NullRecorder, Recorder

__all__ = ["EXCHANGE", "Handler"]

EXCHANGE = web.RequestKey("exchange", Exchange)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class Handler:
    """Answers every request the middleware lets through; built with its router and gate."""

    def __init__(
        self,
        settings: ProxySettings,
        gate: LaneGate,
        router: Router,
        recorder: Recorder,
        mapper: LaneMapper,
    ) -> None:
        self._gate = gate
        self._mapper = mapper
        self._router = router
        self._recorder = recorder
        self._taps = not isinstance(recorder, NullRecorder)
        self._max_body = settings.max_body_mb * 2**20
        self._rules = Rules(
            priorities=dict(settings.client_priorities),
            pins=dict(settings.pin),
            hosts=tuple(router.names),
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """middleware -> classify() -> [async with gate.lane()] -> router.relay()."""
        if not needs_body(request.method, request.path):
            return await self._answer(request, None)
        body = await RequestBody.read(request, self._max_body)
        try:
            return await self._answer(request, body)
        finally:
            body.close()

    async def _answer(self, request: web.Request, body: RequestBody | None) -> web.StreamResponse:
        exchange = request[EXCHANGE]
        doc = None if body is None else body.document()
        facts = classify(
            request.method, request.path, request.headers, request.remote, doc, self._rules
        )
        if facts.pinned and doc is not None and body is not None:
            body.replace(encode_document(doc))
        del doc  # a body's document can be large: it must not wait in the queue
        exchange.client, exchange.priority, exchange.model = (
            facts.client,
            facts.priority,
            facts.model,
        )
        if facts.pinned:
            self._router.count_pin(facts.model_key)
        if facts.route is Route.MERGED:
            return web.json_response(await self._router.merged(facts.path))
        if facts.route is not Route.LANE:
            return await self._router.relay(request, facts, exchange, body=body)
        self._mapper.ensure(facts.model_key)  # its lanes are known, or about to be
        rid, rec, clock = exchange.rid, self._recorder, time.monotonic
        rec.request_received(
            rid,
            client=facts.client,
            priority=facts.priority,
            model=facts.model,
            route=facts.path,
            now=clock(),
        )
        exchange.queued = True

        def admitted(lease: Lease) -> None:
            exchange.admitted, exchange.host = True, lease.upstream
            rec.request_admitted(
                rid,
                host=lease.upstream,
                lane=lease.lane,
                options=dict(facts.options),
                now=clock(),
            )

        lease = self._gate.lane(facts, on_admitted=admitted)
        tap = Tap(rec if self._taps else None, rid, lease, sse=facts.path.startswith("/v1/"))
        try:
            async with lease:
                exchange.queue_ms = _ms(lease.queue_s)
                exchange.queue_position = lease.position
                try:
                    return await self._router.relay(
                        request, facts, exchange, body=body, lease=lease, tap=tap
                    )
                finally:
                    exchange.answer = tap.settle()
        finally:
            exchange.queue_ms = _ms(lease.queue_s)
            exchange.queue_position = lease.position
