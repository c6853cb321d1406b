"""The one middleware: bearer auth, ProxyError -> HTTP body, and one `request_finished` line."""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from proxy import errors
from proxy.ollama import client_key, error_body
from proxy.relay import headers
from proxy.settings import ProxySettings

__all__ = ["EXCHANGE", "Exchange", "error_response", "exchange_middleware"]

log = structlog.get_logger("proxy.access")


@dataclass(slots=True)
class Exchange:
    """What the canonical log line says about one request; handlers fill it in."""

    started: float
    client: str = ""
    priority: str = ""
    model: str = ""
    queue_ms: int = 0
    upstream_ms: int = 0
    bytes: int = 0
    outcome: str = "completed"


EXCHANGE = web.RequestKey("exchange", Exchange)


def error_response(request: web.Request, exc: errors.ProxyError) -> web.Response:
    """The proxy's own answer: Ollama's shape on native paths, OpenAI's on /v1."""
    exchange = request[EXCHANGE]
    extra = {headers.QUEUE_MS: str(exchange.queue_ms), headers.CLIENT: exchange.client}
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


def _authorized(request: web.Request, expected: bytes) -> bool:
    given = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(given, expected)


def exchange_middleware(settings: ProxySettings) -> Middleware:
    """Build the middleware for `settings` (the token is read once, here)."""
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    expected = f"Bearer {token}".encode()
    max_mb = settings.max_body_mb

    @web.middleware
    async def exchange(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers
        record = Exchange(time.monotonic())
        record.client = client_key(
            incoming.get(headers.CLIENT), incoming.get("User-Agent"), request.remote
        )
        request[EXCHANGE] = record
        status = 500
        try:
            if token is not None and not _authorized(request, expected):
                raise errors.Unauthorized("missing or wrong 'Authorization: Bearer' token")
            response = await handler(request)
            status = 499 if record.outcome == "cancelled" else response.status
            return response
        except errors.ProxyError as exc:
            status = exc.status
            record.outcome = "rejected" if status == 503 else "failed"
            if isinstance(exc, errors.UpstreamUnavailable | errors.UpstreamTimeout):
                log.warning(exc.reason, path=request.path, error=exc.message)
            return error_response(request, exc)
        except web.HTTPRequestEntityTooLarge:
            status = 413
            record.outcome = "failed"
            too_big = f"request body is larger than max_body_mb ({max_mb} MiB)"
            return error_response(request, errors.PayloadTooLarge(too_big))
        except (asyncio.CancelledError, ConnectionResetError):
            status, record.outcome = 499, "cancelled"
            raise
        finally:
            log.info(
                "request_finished",
                method=request.method,
                path=request.path,
                status=status,
                outcome=record.outcome,
                model=record.model,
                client=record.client,
                priority=record.priority,
                queue_ms=record.queue_ms,
                upstream_ms=record.upstream_ms,
                bytes=record.bytes,
                ms=round((time.monotonic() - record.started) * 1000),
            )

    return exchange
