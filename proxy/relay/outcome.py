"""The one place a request's Outcome is decided, from what the request path saw (pure)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from proxy import errors
from proxy.stats.chunks import FinalMetrics
from proxy.stats.recorder import Outcome

__all__ = ["Exchange", "Relayed", "decide"]

# Answers given while waiting for a lane; anything else the proxy answers is a failure.
_REJECTIONS = frozenset({"queue_full", "queue_timeout", "draining"})


@dataclass(slots=True)  # read-only by convention: frozen would cost 5x per request
class Relayed:
    """How a relay ended: status, bytes sent, the upstream's failure, the client's exit."""

    status: int
    bytes: int
    error: str | None = None  # the upstream failed mid-stream
    client_gone: bool = False
    stalled: bool = False  # the client stopped reading; the response was ended


@dataclass(slots=True)
class Exchange:
    """What the request path learns about one request as it goes; `decide` reads it."""

    rid: int
    started: float
    client: str = ""
    priority: str = ""
    model: str = ""
    host: str = ""
    queued: bool = False  # it waited for a lane (statistics follow it)
    admitted: bool = False
    queue_ms: int = 0
    queue_position: int = 0  # its place in the queue on arrival (0: it never waited)
    upstream_ms: int = 0
    relayed: Relayed | None = None
    answer: FinalMetrics | None = None  # what the relayed answer's last object told
    stalled: bool = False  # the client stopped reading and lost its answer


def decide(exchange: Exchange, *, status: int | None, error: BaseException | None) -> Outcome:
    """The request's Outcome from the response `status` sent or the `error` raised."""
    relayed, admitted = exchange.relayed, exchange.admitted
    sent = relayed.bytes if relayed is not None else 0
    if exchange.stalled:  # whichever way the abort surfaced: an error or a cancellation
        return Outcome("cancelled", 499, "client_stalled", admitted, sent)
    if isinstance(error, asyncio.CancelledError | ConnectionResetError):
        return Outcome("cancelled", 499, None, admitted, sent)
    if isinstance(error, errors.ProxyError):
        if error.reason in _REJECTIONS and not admitted:
            return Outcome("rejected", error.status, error.reason, admitted, sent)
        return Outcome("failed", error.status, error.reason, admitted, sent)
    if error is not None or status is None:
        return Outcome("failed", 500, "internal_error", admitted, sent)
    if relayed is not None:
        if relayed.stalled:
            return Outcome("cancelled", 499, "client_stalled", admitted, sent)
        if relayed.client_gone:
            return Outcome("cancelled", 499, None, admitted, sent)
        if relayed.error is not None:
            return Outcome("failed", relayed.status, "upstream_dropped", admitted, sent)
        status = relayed.status  # under SSE progress the client had a 200 before the upstream
    if status >= 400:
        return Outcome("failed", status, f"http_{status}", admitted, sent)
    return Outcome("completed", status, None, admitted, sent)
