"""The one middleware: checks first, ProxyError -> HTTP body, then one Outcome for log and stats."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from proxy import errors
from proxy.log import log_access
from proxy.ollama import error_body
from proxy.relay import headers
from proxy.relay.classify import client_key
from proxy.relay.guard import Guard
from proxy.relay.handler import EXCHANGE
from proxy.relay.inflight import InFlight
from proxy.relay.outcome import Exchange, decide
from proxy.relay.progress import PROGRESS, Progress
from proxy.settings import ProxySettings
from proxy.stats.recorder import Outcome, Recorder

__all__ = ["CORS", "add_cors_headers", "error_response", "exchange_middleware"]

log = structlog.get_logger("proxy.access")
CORS = web.RequestKey("cors", dict[str, str])


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: an allowed cross-origin request's answer carries CORS headers."""
    extra = request.get(CORS)
    if extra:
        response.headers.update(extra)


def _started(request: web.Request) -> bool:
    """True once a response's first bytes went out (no other answer can be sent then)."""
    writer = request.writer if request.transport is not None else None
    return writer is not None and writer.output_size > 0


def _client(request: web.Request, exchange: Exchange) -> str:
    """The client key, for a request the handler may never have classified."""
    return exchange.client or client_key(
        request.headers.get(headers.CLIENT), request.headers.get("User-Agent"), request.remote
    )


def error_response(request: web.Request, exc: errors.ProxyError) -> web.Response:
    """The proxy's own answer: Ollama's shape on native paths, OpenAI's on /v1."""
    exchange = request[EXCHANGE]
    extra = dict(
        headers.lanes_headers(
            client=_client(request, exchange),
            queue_ms=exchange.queue_ms,
            queue_position=exchange.queue_position,
        )
    )
    if exc.retry_after_s is not None:
        extra["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, errors.Unauthorized):
        extra["WWW-Authenticate"] = "Bearer"
    return web.Response(
        status=exc.status,
        body=error_body(request.path, exc.status, exc.message),
        content_type="application/json",
        charset="utf-8",
        headers=extra,
    )


def _log_line(request: web.Request, exchange: Exchange, outcome: Outcome) -> None:
    log_access(
        {
            "method": request.method,
            "path": request.path,
            "status": outcome.status,
            "outcome": outcome.kind,
            "reason": outcome.reason,
            "model": exchange.model,
            "client": _client(request, exchange),
            "priority": exchange.priority,
            "upstream": exchange.host,
            "queue_ms": exchange.queue_ms,
            "queue_position": exchange.queue_position,
            "upstream_ms": exchange.upstream_ms,
            "bytes": outcome.bytes,
            "ms": round((time.monotonic() - exchange.started) * 1000),
        }
    )


def exchange_middleware(
    settings: ProxySettings,
    recorder: Recorder,
    inflight: InFlight,
    *,
    admits: Callable[[web.Request], bool] | None = None,
) -> Middleware:
    """Build the middleware for `settings` (the token and the origins are read once, here).

    `admits` names the requests that may go on without the bearer token (the dashboard's static
    files, and its feed with a session value); the Host and Origin checks still apply to them.
    """
    guard = Guard.of(settings, os.environ)
    too_big = f"request body is larger than max_body_mb ({settings.max_body_mb} MiB)"
    debug = settings.log_level == "debug"
    rids = itertools.count(1)

    @web.middleware
    async def exchange(request: web.Request, handler: Handler) -> web.StreamResponse:
        record = Exchange(next(rids), time.monotonic())
        request[EXCHANGE] = record
        task = asyncio.current_task()
        inflight.enter(task)
        status: int | None = None
        error: BaseException | None = None
        try:
            request[CORS] = guard.admit(request)
            if request.method == "OPTIONS":
                response: web.StreamResponse = guard.preflight(request)
            elif not (guard.authorized(request) or (admits is not None and admits(request))):
                raise errors.Unauthorized("missing or wrong 'Authorization: Bearer' token")
            else:
                response = await handler(request)
            status = response.status
            return response
        except errors.ProxyError as exc:
            error = exc
            if isinstance(exc, errors.UpstreamUnavailable | errors.UpstreamTimeout):
                log.warning(exc.reason, path=request.path, error=exc.message)
            progress: Progress | None = request.get(PROGRESS)
            if progress is not None and progress.started:  # 200 went out: the error is an event
                return await progress.fail(exc.status, exc.message)
            return error_response(request, exc)
        except web.HTTPRequestEntityTooLarge:
            error = errors.PayloadTooLarge(too_big)
            return error_response(request, error)
        except Exception as exc:
            error = exc
            log.error(
                "request_failed",
                path=request.path,
                error=f"{type(exc).__name__}: {exc}",
                exc_info=debug,
            )
            if _started(request):
                raise
            return error_response(request, errors.InternalError("internal error in ollama-lanes"))
        except BaseException as exc:
            error = exc
            raise
        finally:
            inflight.leave(task)
            outcome = decide(record, status=status, error=error)
            if record.queued:
                recorder.request_finished(
                    record.rid, outcome=outcome, now=time.monotonic(), answer=record.answer
                )
            _log_line(request, record, outcome)

    return exchange
