"""The request path in one straight line: classify, then a lane if it needs one, then relay."""

from __future__ import annotations

import time

from aiohttp import web

from proxy.relay import headers
from proxy.relay.body import RequestBody
from proxy.relay.classify import RequestFacts, Route, Rules, classify, needs_body
from proxy.relay.gate import LaneGate, Lease
from proxy.relay.mapper import LaneMapper
from proxy.relay.outcome import Exchange
from proxy.relay.pinning import encode_document
from proxy.relay.progress import PROGRESS, Progress, wanted
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
        self._progress_s = settings.progress_interval_s
        self._write_s = settings.timeout_client_write_s
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
        return await self._laned(request, facts, exchange, body)

    async def _laned(
        self,
        request: web.Request,
        facts: RequestFacts,
        exchange: Exchange,
        body: RequestBody | None,
    ) -> web.StreamResponse:
        """An inference request: wait for a lane (with SSE progress if it asked), then relay."""
        self._mapper.ensure(facts.model_key)  # its lanes are known, or about to be
        rid, rec, clock = exchange.rid, self._recorder, time.monotonic
        rec.request_received(
            rid,
            client=facts.client,
            priority=facts.priority,
            model=facts.model,
            route=facts.path,
            now=clock(),
            prompt_chars=facts.prompt_chars,
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

        progress = self._progress(request, facts, exchange)
        lease = self._gate.lane(
            facts, on_admitted=admitted, on_queued=None if progress is None else progress.begin
        )
        tap = Tap(rec if self._taps else None, rid, lease, sse=facts.path.startswith("/v1/"))
        try:
            async with lease:
                exchange.queue_ms = _ms(lease.queue_s)
                exchange.queue_position = lease.position
                early = None if progress is None else await progress.end()
                try:
                    return await self._router.relay(
                        request, facts, exchange, body=body, lease=lease, tap=tap, early=early
                    )
                finally:
                    exchange.answer = tap.settle()
        finally:
            if progress is not None:
                await progress.end()  # the wait failed: no comment may follow the error
            exchange.queue_ms = _ms(lease.queue_s)
            exchange.queue_position = lease.position

    def _progress(
        self, request: web.Request, facts: RequestFacts, exchange: Exchange
    ) -> Progress | None:
        """SSE comments while it waits, for a `/v1` stream that asks (none otherwise)."""
        if not wanted(facts.path, facts.stream, request.headers.get(headers.PROGRESS)):
            return None
        progress = Progress(
            request,
            interval_s=self._progress_s,
            write_s=self._write_s,
            on_stall=lambda: setattr(exchange, "stalled", True),
        )
        request[PROGRESS] = progress  # the middleware ends a started one with its error
        return progress
