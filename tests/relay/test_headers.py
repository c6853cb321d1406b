"""Header rules for relaying and the error bodies in each client's shape (pure)."""

from __future__ import annotations

from proxy.ollama import error_body
from proxy.relay import headers


def test_error_bodies_per_route_family() -> None:
    """Native routes get Ollama's compact body; /v1 gets OpenAI's envelope."""
    assert error_body("/api/chat", 503, "busy") == b'{"error":"busy"}'
    assert error_body("/v1/chat/completions", 400, "bad") == (
        b'{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}'
    )
    assert b'"type":"api_error"' in error_body("/v1/embeddings", 503, "busy")


def test_request_headers_drop_hop_by_hop_host_and_ours() -> None:
    """Upstream gets end-to-end headers only; Host is left for the session to set."""
    incoming = [
        ("Host", "proxy.example.com"),
        ("Connection", "keep-alive, X-Secret"),
        ("X-Secret", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "12"),
        ("Expect", "100-continue"),
        ("X-Lanes-Client", "a"),
        ("Authorization", "Bearer t"),
        ("User-Agent", "ua/1"),
        ("Content-Type", "application/json"),
    ]
    kept = [
        ("Authorization", "Bearer t"),
        ("User-Agent", "ua/1"),
        ("Content-Type", "application/json"),
    ]
    assert headers.request_headers(incoming) == kept
    assert headers.request_headers(incoming, drop_authorization=True) == kept[1:]


def test_response_headers_add_lanes_headers() -> None:
    """The client gets the upstream's end-to-end headers plus X-Lanes-Queue-Ms, -Queue-Position
    and -Client."""
    upstream = [("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")]
    extra = headers.lanes_headers(client="a", queue_ms=12, queue_position=3)
    assert headers.response_headers(upstream, extra=extra) == [
        ("Content-Type", "application/x-ndjson"),
        ("X-Lanes-Queue-Ms", "12"),
        ("X-Lanes-Queue-Position", "3"),
        ("X-Lanes-Client", "a"),
    ]
