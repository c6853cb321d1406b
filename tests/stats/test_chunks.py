"""Reading relayed bytes: streamed-token counts and the final object's numbers."""

from __future__ import annotations

from proxy.stats.chunks import FinalMetrics, StreamTally, parse_final
from tests.stats.helpers import final_line, ndjson_body


class TestParseFinal:
    def test_generate_final_after_a_long_context(self) -> None:
        """The numbers after a large `context` array are read from the tail alone."""
        tally = StreamTally(sse=False)
        for chunk in ndjson_body(3, final_line(prompt=4096, output=3, load_ms=2.0, context=5000)):
            tally.feed(chunk)
        final = tally.final()
        assert final == FinalMetrics(
            prompt_tokens=4096,
            eval_tokens=3,
            load_ns=2_000_000,
            prompt_eval_ns=10_000_000,
            eval_ns=100_000_000,
            total_ns=113_000_000,
        )
        assert tally.tokens == 3

    def test_openai_usage_and_done(self) -> None:
        """A /v1 stream's usage event, followed by [DONE], gives the token counts."""
        tail = (
            b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
            b'data: {"choices":[],"usage":{"prompt_tokens":26,"completion_tokens":2,'
            b'"total_tokens":28}}\n\ndata: [DONE]\n\n'
        )
        assert parse_final(tail) == FinalMetrics(prompt_tokens=26, eval_tokens=2)

    def test_non_streamed_openai_json(self) -> None:
        """A whole /v1 JSON answer carries usage at its end."""
        body = (
            b'{"id":"chatcmpl-4","choices":[{"message":{"content":"\\"prompt_tokens\\":9"}}],'
            b'"usage":{"prompt_tokens":26,"completion_tokens":237,"total_tokens":263}}'
        )
        assert parse_final(body) == FinalMetrics(prompt_tokens=26, eval_tokens=237)

    def test_usage_before_a_closing_event(self) -> None:
        """Usage in an event that is not the last one still counts (Anthropic-style streams)."""
        tail = (
            b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":15}}\n\n'
            b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        )
        assert parse_final(tail) == FinalMetrics(eval_tokens=15)

    def test_error_line(self) -> None:
        """A trailing error line after a 200 is flagged; it carries no numbers."""
        tail = b'{"response":".","done":false}\n{"error":"an error was encountered"}\n'
        assert parse_final(tail) == FinalMetrics(error=True)

    def test_metric_names_inside_text_do_not_count(self) -> None:
        """Escaped quotes in model text never look like a metric."""
        assert parse_final(b'{"response":"\\"eval_count\\":99","done":false}\n') == FinalMetrics()


class TestStreamTally:
    def test_split_anywhere(self) -> None:
        """Counts are the same however the stream is cut into chunks, even byte by byte."""
        body = b"".join(ndjson_body(12, final_line(prompt=5, output=12)))
        for size in (1, 3, 7, 64, len(body)):
            tally = StreamTally(sse=False)
            for i in range(0, len(body), size):
                tally.feed(body[i : i + size])
            assert (tally.tokens, tally.final().eval_tokens) == (12, 12)

    def test_sse_events(self) -> None:
        """SSE counts content events, not the finish or usage events."""
        event = b'data: {"choices":[{"delta":{"content":"data: {\\"x"},"finish_reason":null}]}\n\n'
        finish = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        usage = b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":5}}\n\n'
        body = event * 5 + finish + usage + b"data: [DONE]\n\n"
        for size in (1, 5, len(body)):
            tally = StreamTally(sse=True)
            for i in range(0, len(body), size):
                tally.feed(body[i : i + size])
            assert tally.tokens == 5

    def test_tail_is_bounded(self) -> None:
        """However long the stream, the tally keeps a few KiB."""
        tally = StreamTally(sse=False)
        line = ndjson_body(1, b"")[0]
        for _ in range(20_000):
            tally.feed(line)
        assert tally.tokens == 20_000
        assert len(tally._tail) <= 2 * 4096 + len(line)
