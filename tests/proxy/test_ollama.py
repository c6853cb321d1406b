"""Pure request knowledge: routes, facts from bodies, client keys, error bodies, headers."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequest
from proxy.ollama import client_key, error_body, is_inference, parse_request, priority_of
from proxy.relay import headers


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/chat", True),
        ("POST", "/v1/messages", True),
        ("POST", "/v1/responses", True),
        ("GET", "/api/chat", False),
        ("POST", "/api/show", False),
        ("POST", "/api/pull", False),
        ("GET", "/v1/models", False),
    ],
)
def test_only_inference_routes_take_a_lane(method: str, path: str, expected: bool) -> None:
    """POSTs to the nine inference paths take a lane; everything else passes through."""
    assert is_inference(method, path) is expected


@pytest.mark.parametrize(
    ("path", "body", "loads_only"),
    [
        ("/api/generate", b'{"model": "m"}', True),
        ("/api/generate", b'{"model": "m", "prompt": "", "keep_alive": 0}', True),
        ("/api/generate", b'{"model": "m", "prompt": "", "images": ["aGk="]}', False),
        ("/api/chat", b'{"model": "m", "messages": []}', True),
        ("/api/chat", b'{"model": "m", "messages": [{"role": "user"}]}', False),
        ("/api/embed", b'{"model": "m", "input": ""}', False),
        ("/v1/chat/completions", b'{"model": "m", "messages": []}', False),
    ],
)
def test_load_and_unload_requests_are_recognised(path: str, body: bytes, loads_only: bool) -> None:
    """An empty prompt or message list on generate/chat is a load or unload."""
    assert parse_request(path, body).loads_only is loads_only


def test_facts_carry_model_and_options_only() -> None:
    """The model and options are read; anything else (the prompt) is not kept."""
    facts = parse_request("/api/chat", b'{"model": "m", "options": {"num_ctx": 8}, "x": 1}')
    assert (facts.model, facts.options) == ("m", {"num_ctx": 8})


@pytest.mark.parametrize("body", [b"", b"  ", b"{", b"[1]", b'"text"', b"\xff"])
def test_unusable_bodies_are_bad_requests(body: bytes) -> None:
    """Empty, malformed or non-object bodies raise BadRequest."""
    with pytest.raises(BadRequest):
        parse_request("/api/generate", body)


@pytest.mark.parametrize(
    ("header", "agent", "peer", "expected"),
    [
        (" team-a ", "curl/8", "10.0.0.1", "team-a"),
        (None, "ollama-python/0.6.3 (x86_64 linux) Python/3.11", "10.0.0.1", "ollama-python"),
        (None, "Mozilla 5.0", "10.0.0.1", "Mozilla"),
        ("", "", "10.0.0.1", "10.0.0.1"),
        (None, None, None, "unknown"),
    ],
)
def test_client_key(header: str | None, agent: str | None, peer: str | None, expected: str) -> None:
    """X-Lanes-Client, else the User-Agent's product token, else the peer address."""
    assert client_key(header, agent, peer) == expected


def test_priority_sources() -> None:
    """The header wins (any case), then the per-client mapping, then normal."""
    mapping = {"ci": "batch"}
    assert priority_of("BATCH", "x", mapping) == "batch"
    assert priority_of(None, "ci", mapping) == "batch"
    assert priority_of(None, "x", mapping) == "normal"
    with pytest.raises(BadRequest):
        priority_of("urgent", "x", mapping)


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
    """The client gets the upstream's end-to-end headers plus X-Lanes-Queue-Ms and -Client."""
    upstream = [("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked")]
    assert headers.response_headers(upstream, client="a", queue_ms=12) == [
        ("Content-Type", "application/x-ndjson"),
        ("X-Lanes-Queue-Ms", "12"),
        ("X-Lanes-Client", "a"),
    ]
