"""The catch-all route: inference requests take a lane, everything else passes straight through."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from aiohttp import web

from proxy import errors, headers
from proxy.gate import LaneGate
from proxy.middleware import EXCHANGE, Exchange
from proxy.ollama import RequestFacts, is_inference, parse_request, priority_of
from proxy.recorder import NullRecorder, Recorder
from proxy.settings import ProxySettings
from proxy.upstream import Relayed, Upstream

__all__ = ["ProxyHandler"]


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class ProxyHandler:
    """Relays every request it is given; `upstream` is set once the app's session exists."""

    def __init__(self, settings: ProxySettings, gate: LaneGate, recorder: Recorder) -> None:
        self.upstream: Upstream | None = None
        self._gate = gate
        self._recorder = recorder
        self._records_chunks = not isinstance(recorder, NullRecorder)
        self._priorities: dict[str, str] = dict(settings.client_priorities)
        self._drop_auth = settings.auth_token is not None
        self._rids = itertools.count(1)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        upstream = self.upstream
        assert upstream is not None, "the app's cleanup_ctx has not run"
        record = request[EXCHANGE]
        incoming = request.headers
        send = headers.request_headers(incoming.items(), drop_authorization=self._drop_auth)
        if not is_inference(request.method, request.path):
            body = request.content if request.body_exists else None
            if body is not None and request.content_length is not None:
                send.append(("Content-Length", str(request.content_length)))
            return self._account(
                record, await upstream.relay(request, body, send, client=record.client, queue_ms=0)
            )
        raw = await request.read()
        facts = parse_request(request.path, raw)
        record.model = facts.model
        record.priority = priority_of(
            incoming.get(headers.PRIORITY), record.client, self._priorities
        )
        if facts.loads_only:  # a model load or unload: Ollama answers at once, no lane needed
            return self._account(
                record, await upstream.relay(request, raw, send, client=record.client, queue_ms=0)
            )
        return await self._with_lane(request, upstream, raw, send, facts, record)

    async def _with_lane(
        self,
        request: web.Request,
        upstream: Upstream,
        raw: bytes,
        send: list[tuple[str, str]],
        facts: RequestFacts,
        record: Exchange,
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
        lease = self._gate.lane(record.client, record.priority)
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
            relayed = await upstream.relay(
                request,
                raw,
                send,
                client=record.client,
                queue_ms=record.queue_ms,
                on_headers=lambda code: rec.upstream_headers(rid, status=code, now=clock()),
                on_chunk=self._chunk_recorder(rid) if self._records_chunks else None,
            )
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
