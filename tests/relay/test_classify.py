"""classify(): one request's method, path, headers and body become one RequestFacts."""

from __future__ import annotations

import pytest

from proxy.errors import BadRequest
from proxy.relay.body import RequestBody
from proxy.relay.classify import RequestFacts, Route, Rules, classify, client_key, needs_body
from proxy.upstream_specs import PinSpec

ONE = Rules()
TWO = Rules(hosts=("a", "b"))


def _facts(path: str, body: bytes | None, rules: Rules = ONE, **head: str) -> RequestFacts:
    doc = None if body is None else RequestBody(body).document()
    return classify("POST" if body is not None else "GET", path, head, "10.0.0.1", doc, rules)


class TestRoutes:
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
    def test_only_inference_routes_read_the_body(
        self, method: str, path: str, expected: bool
    ) -> None:
        """POSTs to the nine inference paths are read and classified; the rest stream through."""
        assert needs_body(method, path) is expected

    @pytest.mark.parametrize(
        ("path", "body", "route"),
        [
            ("/api/generate", b'{"model": "m"}', Route.LOAD),
            ("/api/generate", b'{"model": "m", "prompt": "", "keep_alive": 0}', Route.LOAD),
            ("/api/generate", b'{"model": "m", "prompt": "", "images": ["aGk="]}', Route.LANE),
            ("/api/chat", b'{"model": "m", "messages": []}', Route.LOAD),
            ("/api/chat", b'{"model": "m", "messages": [{"role": "user"}]}', Route.LANE),
            ("/api/embed", b'{"model": "m", "input": ""}', Route.LANE),
            ("/v1/chat/completions", b'{"model": "m", "messages": []}', Route.LANE),
        ],
    )
    def test_load_and_unload_requests_take_no_lane(
        self, path: str, body: bytes, route: Route
    ) -> None:
        """An empty prompt or message list on generate/chat is a load or unload."""
        assert _facts(path, body).route is route

    def test_model_lists_are_merged_only_over_several_hosts(self) -> None:
        """GET /api/tags is answered by the proxy with several hosts, relayed with one."""
        assert _facts("/api/tags", None).route is Route.PASS
        assert _facts("/api/tags", None, TWO).route is Route.MERGED
        assert _facts("/api/tags", None, TWO, **{"X-Lanes-Upstream": "b"}).route is Route.PASS

    def test_management_routes_need_a_named_host_when_there_are_several(self) -> None:
        """/api/pull with two hosts and no X-Lanes-Upstream is refused, naming the hosts."""
        with pytest.raises(BadRequest, match=r"X-Lanes-Upstream: a \| b"):
            classify("POST", "/api/pull", {}, None, None, TWO)
        named = classify("POST", "/api/pull", {"X-Lanes-Upstream": "a"}, None, None, TWO)
        assert (named.route, named.upstream) == (Route.PASS, "a")

    def test_an_unknown_host_name_is_a_bad_request(self) -> None:
        """X-Lanes-Upstream must name a configured host."""
        with pytest.raises(BadRequest, match="no upstream is called 'c'"):
            _facts("/api/tags", None, TWO, **{"X-Lanes-Upstream": "c"})


class TestBody:
    def test_facts_carry_model_and_options_only(self) -> None:
        """The model and options are read; the prompt is not kept apart from the body."""
        facts = _facts("/api/chat", b'{"model": "m", "options": {"num_ctx": 8}, "x": 1}')
        assert (facts.model, facts.model_key, facts.options) == ("m", "m:latest", {"num_ctx": 8})

    def test_facts_carry_the_prompts_length(self) -> None:
        """The prompt's length in characters is kept for statistics, never its text."""
        facts = _facts("/api/chat", b'{"model": "m", "messages": [{"content": "hello"}]}')
        assert facts.prompt_chars == 5
        assert "hello" not in repr(facts)

    @pytest.mark.parametrize(
        "body", [b"", b"  ", b"{", b"[1]", b'"text"', b"\xff", b"[" * 100_000 + b"]" * 100_000]
    )
    def test_unusable_bodies_are_bad_requests(self, body: bytes) -> None:
        """Empty, malformed, non-object or pathologically nested bodies raise BadRequest."""
        with pytest.raises(BadRequest):
            RequestBody(body).document()

    def test_a_pin_rewrites_the_document_and_says_so(self) -> None:
        """A [serve.pin] rule for the model sets num_ctx in the document sent upstream."""
        rules = Rules(pins={"m:latest": PinSpec(num_ctx=8192)})
        doc = RequestBody(b'{"model":"m","prompt":"hi"}').document()
        facts = classify("POST", "/api/generate", {}, None, doc, rules)
        assert facts.pinned
        assert doc["options"] == {"num_ctx": 8192}
        assert facts.options == {"num_ctx": 8192}

    def test_an_unpinned_document_is_left_as_it_came(self) -> None:
        """Without a pin the document is untouched and the facts say so."""
        doc = RequestBody(b'{"model": "m",  "prompt": "hi"}').document()
        facts = classify("POST", "/api/generate", {}, None, doc, ONE)
        assert (doc, facts.pinned) == ({"model": "m", "prompt": "hi"}, False)


class TestClient:
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
    def test_client_key(
        self, header: str | None, agent: str | None, peer: str | None, expected: str
    ) -> None:
        """X-Lanes-Client, else the User-Agent's product token, else the peer address."""
        assert client_key(header, agent, peer) == expected

    def test_priority_sources(self) -> None:
        """The header wins (any case), then the per-client mapping, then normal."""
        rules = Rules(priorities={"ci": "batch"})
        body = b'{"model":"m","prompt":"p"}'
        assert _facts("/api/generate", body, rules, **{"X-Lanes-Priority": "BATCH"}).priority == (
            "batch"
        )
        assert _facts("/api/generate", body, rules, **{"X-Lanes-Client": "ci"}).priority == "batch"
        assert _facts("/api/generate", body, rules).priority == "normal"
        with pytest.raises(BadRequest):
            _facts("/api/generate", body, rules, **{"X-Lanes-Priority": "urgent"})
