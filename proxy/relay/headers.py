"""Header rules for relaying (pure): hop-by-hop filtering, Host rewrite, the X-Lanes-* names."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CLIENT",
    "PRIORITY",
    "PROGRESS",
    "QUEUE_MS",
    "QUEUE_POSITION",
    "UPSTREAM",
    "lanes_headers",
    "request_headers",
    "response_headers",
]

CLIENT = "X-Lanes-Client"
PRIORITY = "X-Lanes-Priority"
UPSTREAM = "X-Lanes-Upstream"
QUEUE_MS = "X-Lanes-Queue-Ms"
QUEUE_POSITION = "X-Lanes-Queue-Position"
PROGRESS = "X-Lanes-Progress"

# RFC 9110 §7.6.1 connection-specific fields, plus the length and framing the relay redoes.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Dropped on the way up: Host is rewritten to the upstream's (Ollama rejects foreign hosts,
# reference §2) by letting the client session set it; the length is set from the body.
# Expect: the proxy already answered `100-continue` itself and holds or streams the body.
_DROP_UP = _HOP_BY_HOP | {
    "host",
    "content-length",
    "expect",
    "x-lanes-client",
    "x-lanes-priority",
    "x-lanes-upstream",
    "x-lanes-progress",
}


def _lowered(headers: Iterable[tuple[str, str]]) -> tuple[list[tuple[str, str, str]], set[str]]:
    """The headers with each name lowered once, and the names a `Connection` header marks as
    hop-by-hop for this message."""
    items = [(name.lower(), name, value) for name, value in headers]
    listed: set[str] = set()
    for low, _, value in items:
        if low == "connection":
            listed.update(token.strip().lower() for token in value.split(","))
    return items, listed


def request_headers(
    headers: Iterable[tuple[str, str]], *, drop_authorization: bool = False
) -> list[tuple[str, str]]:
    """Headers to send upstream: end-to-end ones only, without Host and our own X-Lanes-*."""
    items, listed = _lowered(headers)
    return [
        (name, value)
        for low, name, value in items
        if low not in _DROP_UP
        and low not in listed
        and not (drop_authorization and low == "authorization")
    ]


def lanes_headers(*, client: str, queue_ms: int, queue_position: int) -> list[tuple[str, str]]:
    """The X-Lanes-* headers of every answer: the wait, the place in the queue, the client."""
    return [(QUEUE_MS, str(queue_ms)), (QUEUE_POSITION, str(queue_position)), (CLIENT, client)]


def response_headers(
    headers: Iterable[tuple[str, str]], *, extra: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Headers to send the client: the upstream's end-to-end ones plus `extra` (X-Lanes-*)."""
    items, listed = _lowered(headers)
    kept = [
        (name, value) for low, name, value in items if low not in _HOP_BY_HOP and low not in listed
    ]
    kept.extend(extra)
    return kept
