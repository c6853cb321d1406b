"""The SSE progress lines (pure): who gets them, the comment, and the error events."""

from __future__ import annotations

import json

import pytest

from proxy.relay.progress import comment, error_event, upstream_error_event, wanted

CHAT = "/v1/chat/completions"


def _event_data(event: bytes) -> object:
    """The JSON of one `data: ...` event, checked to be exactly one event."""
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n") == 2
    return json.loads(event[len(b"data: ") : -2])


class TestWanted:
    @pytest.mark.parametrize("header", ["sse", "SSE", " Sse "])
    def test_a_v1_stream_that_asks_gets_progress(self, header: str) -> None:
        """A streamed /v1 answer with `X-Lanes-Progress: sse` (any case) gets comments."""
        assert wanted(CHAT, True, header) is True

    @pytest.mark.parametrize("header", [None, "", "ndjson", "sse2"])
    def test_a_v1_stream_that_does_not_ask_gets_none(self, header: str | None) -> None:
        """Without the header, or with another value, nothing changes."""
        assert wanted(CHAT, True, header) is False

    def test_an_answer_that_does_not_stream_gets_none(self) -> None:
        """stream=false has no stream to carry comments."""
        assert wanted(CHAT, False, "sse") is False

    @pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
    def test_native_ndjson_routes_never_get_progress(self, path: str) -> None:
        """NDJSON streams are never touched, whatever the header says."""
        assert wanted(path, True, "sse") is False


class TestComment:
    def test_a_comment_says_the_position_and_the_eta_in_ms(self) -> None:
        """The comment is one SSE comment line and its blank line, the ETA rounded to ms."""
        assert comment(3, 4.2004) == b": queued position=3 eta_ms=4200\n\n"


class TestErrorEvent:
    def test_the_proxys_own_error_uses_openais_envelope(self) -> None:
        """A queue timeout becomes one event with OpenAI's error envelope."""
        event = error_event(CHAT, 503, "server busy")
        expected = {
            "error": {"message": "server busy", "type": "api_error", "param": None, "code": None}
        }
        assert expected == _event_data(event)

    def test_an_upstream_envelope_is_kept_as_it_came(self) -> None:
        """Ollama's own /v1 error envelope is sent as it is, on one line."""
        raw = b'{"error": {"message": "model \\"x\\" not found", "type": "not_found_error",\n'
        raw += b'"param": null, "code": null}}\n'
        assert json.loads(raw) == _event_data(upstream_error_event(CHAT, 404, raw))

    def test_a_native_error_body_is_put_in_the_envelope(self) -> None:
        """A `{"error": "..."}` body becomes OpenAI's envelope with its message and status type."""
        data = _event_data(upstream_error_event(CHAT, 404, b'{"error":"model \'x\' not found"}'))
        assert data == {
            "error": {
                "message": "model 'x' not found",
                "type": "not_found_error",
                "param": None,
                "code": None,
            }
        }

    @pytest.mark.parametrize(
        ("raw", "message"),
        [(b"404 page not found\n", "404 page not found"), (b"", "the upstream answered HTTP 404")],
    )
    def test_a_body_that_is_not_json_becomes_the_message(self, raw: bytes, message: str) -> None:
        """Plain text (or nothing) from the upstream still makes one well-formed error event."""
        data = _event_data(upstream_error_event(CHAT, 404, raw))
        assert isinstance(data, dict)
        assert message == data["error"]["message"]
