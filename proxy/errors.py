"""Errors the proxy answers itself; `middleware` alone turns them into HTTP responses."""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Draining",
    "Forbidden",
    "InternalError",
    "PayloadTooLarge",
    "ProxyError",
    "QueueFull",
    "QueueTimeout",
    "Unauthorized",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class ProxyError(Exception):
    """An answer the proxy gives instead of the upstream's; `reason` is a stable label."""

    status = 500
    reason = "proxy_error"

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class BadRequest(ProxyError):
    """The request cannot be queued as it is (invalid JSON, bad header)."""

    status = 400
    reason = "bad_request"


class PayloadTooLarge(ProxyError):
    """The body is larger than `max_body_mb`."""

    status = 413
    reason = "payload_too_large"


class Unauthorized(ProxyError):
    """A bearer token is required and was missing or wrong."""

    status = 401
    reason = "unauthorized"


class InternalError(ProxyError):
    """Something the proxy did not expect; the client gets this instead of a traceback."""

    status = 500
    reason = "internal_error"


class Forbidden(ProxyError):
    """A browser rule refused the request: a Host or an Origin Ollama would not accept."""

    status = 403
    reason = "forbidden"


class QueueFull(ProxyError):
    """`max_queue` requests already wait; try again after `retry_after_s`."""

    status = 503
    reason = "queue_full"


class QueueTimeout(ProxyError):
    """The request waited longer than its class's maximum queue wait."""

    status = 503
    reason = "queue_timeout"


class Draining(ProxyError):
    """The proxy is shutting down and takes no more inference requests."""

    status = 503
    reason = "draining"


class UpstreamUnavailable(ProxyError):
    """The upstream refused or dropped the connection before answering."""

    status = 502
    reason = "upstream_unavailable"


class UpstreamTimeout(ProxyError):
    """The upstream did not connect or answer in time."""

    status = 504
    reason = "upstream_timeout"
