"""The bad-input catalogue: each case gets a clear answer, the daemon stays up, no lane leaks."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from proxy.stats.chunks import FinalMetrics
from proxy.stats.recorder import Outcome
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.relay.raw import RawAnswer, raw_request

HEAD = b"Host: 127.0.0.1\r\nConnection: close\r\n"


def _post(path: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\n" + HEAD + extra
        + b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One bad request: what is sent, the status and the body shape expected back."""

    name: str
    request: bytes
    status: int
    shape: str  # "native": {"error": str}; "openai": the OpenAI envelope; "any": aiohttp's own
    settings: tuple[tuple[str, Any], ...] = ()


NESTED = b"[" * 100_000 + b"]" * 100_000
CASES = [
    Case("empty native body", _post(b"/api/generate", b""), 400, "native"),
    Case("empty openai body", _post(b"/v1/chat/completions", b""), 400, "openai"),
    Case("malformed JSON", _post(b"/api/chat", b'{"model": '), 400, "native"),
    Case("malformed JSON on /v1", _post(b"/v1/embeddings", b"{nope"), 400, "openai"),
    Case("a JSON list", _post(b"/api/generate", b"[1, 2]"), 400, "native"),
    Case("a JSON string", _post(b"/api/embed", b'"text"'), 400, "native"),
    Case("not UTF-8", _post(b"/api/generate", b"\xff\xfe{}"), 400, "native"),
    Case("100,000-deep JSON", _post(b"/api/generate", NESTED), 400, "native"),
    Case("100,000-deep JSON on /v1", _post(b"/v1/completions", NESTED), 400, "openai"),
    Case(
        "unknown priority",
        _post(b"/api/chat", b'{"model":"m"}', b"X-Lanes-Priority: urgent\r\n"),
        400,
        "native",
    ),
    Case(
        "unknown upstream",
        _post(b"/api/generate", b'{"model":"m"}', b"X-Lanes-Upstream: mars\r\n"),
        400,
        "native",
    ),
    Case(
        "body over max_body_mb",
        _post(b"/api/generate", b'{"model":"m","prompt":"' + b"a" * (2 * 2**20) + b'"}'),
        413,
        "native",
        (("max_body_mb", 1),),
    ),
    Case(
        "absolute-form target",
        b"POST http://169.254.169.254/api/generate HTTP/1.1\r\n" + HEAD + b"\r\n",
        400,
        "native",
    ),
    Case(
        "authority-form target",
        b"CONNECT 169.254.169.254:80 HTTP/1.1\r\n" + HEAD + b"\r\n",
        400,
        "any",
    ),
    Case("asterisk target on GET", b"GET * HTTP/1.1\r\n" + HEAD + b"\r\n", 400, "any"),
    Case("foreign Host", b"GET /api/tags HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403, "native"),
    Case(
        "foreign Origin",
        b"GET /api/ps HTTP/1.1\r\n" + HEAD + b"Origin: https://evil.example\r\n\r\n",
        403,
        "native",
    ),
    Case(
        "no token",
        b"GET /api/tags HTTP/1.1\r\n" + HEAD + b"\r\n",
        401,
        "native",
        (("auth_token", "s3cret"),),
    ),
    Case(
        "token bytes that are not text",
        b"GET /v1/models HTTP/1.1\r\n" + HEAD + b"Authorization: Bearer \xc3\x28\xff\r\n\r\n",
        401,
        "openai",
        (("auth_token", "s3cret"),),
    ),
    Case(
        "an oversized header",
        b"GET /api/tags HTTP/1.1\r\n" + HEAD + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        400,
        "any",
    ),
    Case(
        "broken chunked framing",
        b"POST /api/chat HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
        "any",
    ),
    Case(
        "two Content-Lengths",
        b"POST /api/chat HTTP/1.1\r\n" + HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
        "any",
    ),
]


def _check_shape(answer: RawAnswer, shape: str) -> None:
    if shape == "any":
        return
    doc = answer.json()
    assert answer.headers["content-type"].startswith("application/json")
    if shape == "native":
        assert isinstance(doc["error"], str)
        assert doc["error"]
    else:
        error = doc["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["message"]


async def _still_serving(url: str, token: str | None) -> dict[str, Any]:
    head = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=head) as s:
        async with s.get(url + "/api/version") as resp:
            assert resp.status == 200
        async with s.get(url + "/stats") as resp:
            doc: dict[str, Any] = await resp.json()
            return doc


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input_gets_a_clear_answer(
    simulator: SimulatorFactory,
    proxy: ProxyFactory,
    case: Case,
    captured_logs: list[MutableMapping[str, Any]],
) -> None:
    """Status and body shape as the client expects; the daemon answers on; no lane held; no
    traceback in the logs."""
    sim = await simulator()
    settings = dict(case.settings)
    prx = await proxy(base_url(sim), lanes=1, **settings)
    answer = await raw_request(prx, case.request)
    assert answer.status == case.status
    _check_shape(answer, case.shape)
    stats = await _still_serving(base_url(prx), settings.get("auth_token"))
    assert stats["lanes"]["busy"] == 0
    assert stats["queue"]["depth"] == 0
    assert not [e for e in captured_logs if "exc_info" in e or "exception" in e]


class _Broken:
    """A recorder that fails when a request arrives: a stand-in for a bug on the request path."""

    def request_received(self, rid: int, **_: Any) -> None:
        raise RuntimeError("a bug")

    def request_admitted(self, rid: int, **_: Any) -> None:
        return None

    def upstream_headers(self, rid: int, **_: Any) -> None:
        return None

    def chunk_relayed(self, rid: int, tokens: int, now: float) -> None:
        return None

    def request_finished(
        self, rid: int, *, outcome: Outcome, now: float, answer: FinalMetrics | None = None
    ) -> None:
        return None


async def test_an_unexpected_exception_is_one_log_line_and_a_500(
    simulator: SimulatorFactory,
    proxy: ProxyFactory,
    captured_logs: list[MutableMapping[str, Any]],
) -> None:
    """A bug answers 500 in the client's shape and logs one `request_failed` line without a
    traceback; the daemon answers the next request."""
    sim = await simulator()
    prx = await proxy(base_url(sim), lanes=1, recorder=_Broken())
    url = base_url(prx)
    body = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as s, s.post(url + "/v1/chat/completions", json=body) as r:
        assert r.status == 500
        assert json.loads(await r.read())["error"]["type"] == "api_error"
    failed = [e for e in captured_logs if e["event"] == "request_failed"]
    assert [(e["error"], e.get("exc_info")) for e in failed] == [("RuntimeError: a bug", False)]
    stats = await _still_serving(url, None)
    assert (stats["lanes"]["busy"], stats["queue"]["depth"]) == (0, 0)
