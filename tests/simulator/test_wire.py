"""Exact bodies, byte for byte, as in ollama-api.md §4-5."""

from __future__ import annotations

from proxy.simulator import wire
from proxy.simulator.wire import FinalStats

STAMP = "2026-08-22T10:15:24.097767Z"


class TestNative:
    def test_created_at_trims_trailing_zeros(self) -> None:
        """RFC 3339 in UTC with up to nine fraction digits, trailing zeros dropped."""
        assert wire.rfc3339(1_787_393_724_097_767_000) == STAMP
        assert wire.rfc3339(1_787_393_724_000_000_000) == "2026-08-22T10:15:24Z"

    def test_generate_chunk(self) -> None:
        """A generate chunk is one compact line."""
        line = wire.ndjson(wire.generate_chunk("llama3.2", STAMP, "The"))
        expected = b'{"model":"llama3.2","created_at":"' + STAMP.encode()
        expected += b'","response":"The","done":false}\n'
        assert expected == line

    def test_generate_final_omits_zero_stats(self) -> None:
        """Final chunk: done_reason, context, then the non-zero stats in Ollama's order."""
        stats = FinalStats(
            total_duration=4935886791,
            load_duration=534986708,
            prompt_eval_count=26,
            prompt_eval_duration=107345000,
            eval_count=237,
            eval_duration=4289432000,
        )
        body = wire.generate_final("llama3.2", STAMP, "stop", stats, context=[1, 2])
        assert wire.dumps(body) == (
            '{"model":"llama3.2","created_at":"2026-08-22T10:15:24.097767Z","response":"",'
            '"done":true,"done_reason":"stop","context":[1,2],"total_duration":4935886791,'
            '"load_duration":534986708,"prompt_eval_count":26,"prompt_eval_duration":107345000,'
            '"eval_count":237,"eval_duration":4289432000}'
        )
        sparse = wire.generate_final("m", STAMP, "length", FinalStats(eval_count=3))
        assert '"done_reason":"length","eval_count":3}' in wire.dumps(sparse)

    def test_chat_chunk_and_final(self) -> None:
        """Chat lines carry message objects and no context."""
        chunk = wire.dumps(wire.chat_chunk("llama3.2", STAMP, "The"))
        assert chunk == (
            '{"model":"llama3.2","created_at":"2026-08-22T10:15:24.097767Z",'
            '"message":{"role":"assistant","content":"The"},"done":false}'
        )
        final = wire.dumps(wire.chat_final("m", STAMP, "stop", FinalStats(total_duration=5)))
        assert final.endswith(
            '"message":{"role":"assistant","content":""},"done":true,'
            '"done_reason":"stop","total_duration":5}'
        )

    def test_load_and_unload_replies(self) -> None:
        """Empty-prompt replies as the reference shows them."""
        stamp = "2024-09-12T03:54:03.516566Z"
        assert wire.dumps(wire.load_reply("llama3.2", stamp, "load", chat=False)) == (
            '{"model":"llama3.2","created_at":"2024-09-12T03:54:03.516566Z","response":"",'
            '"done":true,"done_reason":"load"}'
        )

    def test_html_characters_are_escaped_like_go(self) -> None:
        """Go's encoder writes <, > and & as \\u escapes."""
        assert wire.dumps({"response": "a<b>&"}) == '{"response":"a\\u003cb\\u003e\\u0026"}'


class TestErrors:
    def test_busy_body_has_two_spaces(self) -> None:
        """The 503 body, exactly."""
        assert wire.ndjson(wire.error_body(wire.BUSY_MESSAGE)) == (
            b'{"error":"server busy, please try again.  maximum pending requests exceeded"}\n'
        )

    def test_not_found_messages(self) -> None:
        """Single quotes for generate/chat, double quotes and a hint for embed."""
        assert wire.not_found_model("llama9") == "model 'llama9' not found"
        assert wire.not_found_embed("llama9") == 'model "llama9" not found, try pulling it first'

    def test_openai_envelope(self) -> None:
        """The OpenAI error envelope keeps the message; type follows the status."""
        assert wire.dumps(wire.openai_error(wire.BUSY_MESSAGE, 503)) == (
            '{"error":{"message":"server busy, please try again.  maximum pending requests '
            'exceeded","type":"api_error","param":null,"code":null}}'
        )
        assert wire.openai_error("x", 400)["error"]["type"] == "invalid_request_error"
        assert wire.openai_error("x", 404)["error"]["type"] == "not_found_error"


class TestOpenAI:
    def test_chat_chunks(self) -> None:
        """First chunk with the role, a finish chunk with an empty delta, then usage."""
        first = wire.sse(
            wire.openai_chat_chunk("chatcmpl-417", 1766398524, "llama3.2", "The", first=True)
        )
        assert first == (
            b'data: {"id":"chatcmpl-417","object":"chat.completion.chunk","created":1766398524,'
            b'"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,'
            b'"delta":{"role":"assistant","content":"The"},"finish_reason":null}]}\n\n'
        )
        finish = wire.dumps(
            wire.openai_chat_chunk("chatcmpl-417", 1, "m", None, finish_reason="stop")
        )
        assert finish.endswith('"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
        usage = wire.dumps(
            wire.openai_usage_chunk("chatcmpl-417", "chat.completion.chunk", 1, "m", 26, 2)
        )
        assert usage.endswith(
            '"choices":[],"usage":{"prompt_tokens":26,"completion_tokens":2,"total_tokens":28}}'
        )
        assert wire.SSE_DONE == b"data: [DONE]\n\n"

    def test_chat_completion(self) -> None:
        """The non-streaming chat.completion object."""
        body = wire.openai_chat_completion(
            "chatcmpl-417", 1766398528, "llama3.2", "The sky", "stop", 26, 237
        )
        assert wire.dumps(body) == (
            '{"id":"chatcmpl-417","object":"chat.completion","created":1766398528,'
            '"model":"llama3.2","system_fingerprint":"fp_ollama","choices":[{"index":0,'
            '"message":{"role":"assistant","content":"The sky"},"finish_reason":"stop"}],'
            '"usage":{"prompt_tokens":26,"completion_tokens":237,"total_tokens":263}}'
        )
