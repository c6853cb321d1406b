"""The catch-all route: inference requests take a lane, everything else passes straight through."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from aiohttp import web

from proxy import errors
from proxy.ollama import RequestFacts, is_inference, parse_request, priority_of
from proxy.relay import headers
from proxy.relay.gate import LaneGate, Lease
from proxy.relay.merge import MERGED_PATHS
from proxy.relay.middleware import EXCHANGE, Exchange
from proxy.relay.router import Router
from proxy.relay.upstream import Body, Relayed
from proxy.settings import ProxySettings
from proxy.stats.recorder import NullRecorder, Recorder
from proxy.upstream_specs import model_key

__all__ = ["MANAGEMENT_PATHS", "ProxyHandler"]

# Routes that change one host; with several hosts they need `X-Lanes-Upstream`.
MANAGEMENT_PATHS = frozenset({"/api/pull", "/api/delete", "/api/create", "/api/copy", "/api/push"})
_RETRYABLE = (errors.UpstreamUnavailable, errors.UpstreamTimeout)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class ProxyHandler:
    """Relays every request it is given; `router` is set once the app's session exists."""

    def __init__(self, settings: ProxySettings, gate: LaneGate, recorder: Recorder) -> None:
        self.router: Router | None = None
        self._gate = gate
        self._recorder = recorder
        self._records_chunks = not isinstance(recorder, NullRecorder)
        self._priorities: dict[str, str] = dict(settings.client_priorities)
        self._drop_auth = settings.auth_token is not None
        self._rids = itertools.count(1)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        router = self.router
        assert router is not None, "the app's cleanup_ctx has not run"
        record = request[EXCHANGE]
        incoming = request.headers
        send = headers.request_headers(incoming.items(), drop_authorization=self._drop_auth)
        named = self._named(request, router)
        if not is_inference(request.method, request.path):
            return await self._pass_through(request, router, named, send, record)
        raw = await request.read()
        facts = parse_request(request.path, raw)
        record.model = facts.model
        record.priority = priority_of(
            incoming.get(headers.PRIORITY), record.client, self._priorities
        )
        model = model_key(facts.model)
        raw = router.pin(request.path, model, raw)
        if facts.loads_only:  # a model load or unload: Ollama answers at once, no lane needed
            name = named or router.pick(model)
            relayed = await self._relay(request, router, name, raw, send, record)
            return self._account(record, relayed)
        return await self._with_lane(request, router, raw, send, facts, record, model)

    @staticmethod
    def _named(request: web.Request, router: Router) -> str | None:
        name = request.headers.get(headers.UPSTREAM, "").strip()
        if not name:
            return None
        if name not in router.relays:
            raise errors.BadRequest(
                f"{headers.UPSTREAM}: no upstream is called {name!r}; "
                f"configured: {', '.join(router.names)}"
            )
        return name

    async def _pass_through(
        self,
        request: web.Request,
        router: Router,
        named: str | None,
        send: list[tuple[str, str]],
        record: Exchange,
    ) -> web.StreamResponse:
        several = len(router.names) > 1
        if named is None and several:
            if request.method == "GET" and request.path in MERGED_PATHS:
                return web.json_response(await router.merged(request.path))
            if request.path in MANAGEMENT_PATHS:
                raise errors.BadRequest(
                    f"{request.path} changes one Ollama host and this proxy has "
                    f"{len(router.names)}; name one with the header {headers.UPSTREAM}: "
                    f"{' | '.join(router.names)}"
                )
        body = request.content if request.body_exists else None
        if body is not None and request.content_length is not None:
            send.append(("Content-Length", str(request.content_length)))
        name = named or router.pick()
        return self._account(record, await self._relay(request, router, name, body, send, record))

    async def _relay(
        self,
        request: web.Request,
        router: Router,
        name: str,
        body: Body,
        send: list[tuple[str, str]],
        record: Exchange,
        rid: int | None = None,
    ) -> Relayed:
        """Relay to host `name` and tell its breaker how it went."""
        rec, clock = self._recorder, time.monotonic
        try:
            relayed = await router.relays[name].relay(
                request,
                body,
                send,
                client=record.client,
                queue_ms=record.queue_ms,
                on_headers=None
                if rid is None
                else lambda code: rec.upstream_headers(rid, status=code, now=clock()),
                on_chunk=self._chunk_recorder(rid)
                if rid is not None and self._records_chunks
                else None,
            )
        except _RETRYABLE:
            router.request_failed(name)
            raise
        if relayed.status >= 500 or (relayed.error is not None and not relayed.client_gone):
            router.request_failed(name)
        else:
            router.request_succeeded(name)
        return relayed

    async def _with_lane(
        self,
        request: web.Request,
        router: Router,
        raw: bytes,
        send: list[tuple[str, str]],
        facts: RequestFacts,
        record: Exchange,
        model: str,
    ) -> web.StreamResponse:
        rec = self._recorder
        rid = next(self._rids)
        clock = time.monotonic
        entered = clock()
        rec.request_received(
            rid,
            client=record.client,
            priority=record.priority,
            model=facts.model,
            route=request.path,
            now=entered,
        )
        lease = self._gate.lane(record.client, record.priority, model=model)
        try:  # entered by hand: leaving the queue and leaving a lane are reported differently
            await lease.__aenter__()
        except errors.ProxyError as exc:
            record.queue_ms = _ms(clock() - entered)
            rec.request_rejected(rid, reason=exc.reason, now=clock())
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            record.queue_ms = _ms(clock() - entered)
            rec.request_cancelled(rid, while_queued=True, now=clock())
            raise
        record.queue_ms = _ms(lease.queue_s)
        started = clock()
        rec.request_admitted(rid, lane=lease.lane, options=facts.options, now=started)
        status, outcome = 500, "failed"
        reason: str | None = "internal_error"
        try:
            try:
                relayed = await self._relay(request, router, lease.upstream, raw, send, record, rid)
            except _RETRYABLE:  # nothing reached the client: once more, on another host
                failed = lease.upstream
                if not router.can_retry(model, failed):
                    raise
                lease.release()
                lease = await self._requeue(record, model, failed)
                relayed = await self._relay(request, router, lease.upstream, raw, send, record, rid)
            status = relayed.status
            if relayed.client_gone:
                status, outcome, reason = 499, "cancelled", None
                rec.request_cancelled(rid, while_queued=False, now=clock())
            elif relayed.error is None:
                outcome, reason = "completed", None
            else:
                reason = "upstream_dropped"
            return self._account(record, relayed)
        except errors.ProxyError as exc:
            status, reason = exc.status, exc.reason
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            status, outcome, reason = 499, "cancelled", None
            rec.request_cancelled(rid, while_queued=False, now=clock())
            raise
        finally:
            record.upstream_ms = _ms(clock() - started)
            lease.release()
            rec.request_finished(rid, status=status, outcome=outcome, reason=reason, now=clock())

    async def _requeue(self, record: Exchange, model: str, failed: str) -> Lease:
        lease = self._gate.lane(
            record.client, record.priority, model=model, avoid=frozenset({failed})
        )
        await lease.__aenter__()
        return lease

    def _chunk_recorder(self, rid: int) -> Callable[[bytes], None]:
        rec, clock = self._recorder, time.monotonic
        return lambda data: rec.chunk_relayed(rid, data, clock())

    @staticmethod
    def _account(record: Exchange, relayed: Relayed) -> web.StreamResponse:
        record.bytes = relayed.bytes
        if relayed.client_gone:
            record.outcome = "cancelled"
        elif relayed.error is not None:
            record.outcome = "failed"
        return relayed.response
