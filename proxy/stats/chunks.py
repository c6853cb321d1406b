"""Cheap reading of relayed response bytes: streamed-token counts and final-chunk numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FinalMetrics", "StreamTally", "parse_final"]

TAIL_BYTES = 4096
# One native NDJSON chunk per generated token; the final one says "done":true.
_NDJSON_TOKEN = b'"done":false'
# One SSE content event per token: each says "finish_reason":null, while the finish
# and usage events do not. Inside a JSON string a quote is escaped, so model text
# never contains these patterns.
_SSE_TOKEN = b'"finish_reason":null'
_NUMBER = re.compile(
    rb'"(prompt_eval_count|prompt_eval_duration|eval_count|eval_duration|load_duration'
    rb'|total_duration|prompt_tokens|completion_tokens|input_tokens|output_tokens)":\s*(\d+)'
)

_PROMPT_KEYS = (b"prompt_eval_count", b"prompt_tokens", b"input_tokens")  # native, /v1, others
_OUTPUT_KEYS = (b"eval_count", b"completion_tokens", b"output_tokens")


@dataclass(slots=True)  # read-only by convention: frozen would cost 5x per request
class FinalMetrics:
    """What a response's last object told: Ollama's final-chunk fields (durations in ns)."""

    prompt_tokens: int | None = None
    eval_tokens: int | None = None
    load_ns: int | None = None
    prompt_eval_ns: int | None = None
    eval_ns: int | None = None
    total_ns: int | None = None
    error: bool = False


def _last_object(tail: bytes) -> bytes:
    """The last JSON object of an NDJSON or SSE tail (possibly cut at its start)."""
    body = tail.rstrip()
    if body.endswith(b"data: [DONE]"):
        body = body[: -len(b"data: [DONE]")].rstrip()
    line = body[body.rfind(b"\n") + 1 :]
    return line.removeprefix(b"data: ")


def parse_final(tail: bytes) -> FinalMetrics:
    """Read the metrics in `tail`, the latest value of each winning; absent ones stay None.

    Only final objects carry these keys (Ollama's last chunk, `/v1` usage, or a usage event
    followed by a closing event), and model text cannot contain them unescaped.
    """
    found = {key: int(value) for key, value in _NUMBER.findall(tail)}  # later pairs win
    get = found.get
    return FinalMetrics(
        prompt_tokens=next((found[k] for k in _PROMPT_KEYS if k in found), None),
        eval_tokens=next((found[k] for k in _OUTPUT_KEYS if k in found), None),
        load_ns=get(b"load_duration"),
        prompt_eval_ns=get(b"prompt_eval_duration"),
        eval_ns=get(b"eval_duration"),
        total_ns=get(b"total_duration"),
        error=_last_object(tail).startswith(b'{"error"'),
    )


class StreamTally:
    """Counts streamed tokens chunk by chunk and keeps a small tail for the final object.

    `feed` is O(len(chunk)): a `bytes.count`, plus a check of the
    bytes that straddle the previous chunk, and an amortised O(1) tail update.
    """

    __slots__ = ("_tail", "sse", "tokens")

    def __init__(self, *, sse: bool) -> None:
        self.sse = sse
        self.tokens = 0
        self._tail = bytearray()

    def _count(self, data: bytes, pattern: bytes) -> int:
        k = len(pattern) - 1
        return data.count(pattern) + (bytes(self._tail[-k:]) + data[:k]).count(pattern)

    def feed(self, data: bytes) -> int:
        """Take one relayed chunk; returns how many tokens it streamed."""
        new = self._count(data, _SSE_TOKEN if self.sse else _NDJSON_TOKEN)
        self.tokens += new
        self._tail += data
        if len(self._tail) > 2 * TAIL_BYTES:
            del self._tail[:-TAIL_BYTES]
        return new

    def final(self) -> FinalMetrics:
        """The metrics of the last object relayed so far."""
        return parse_final(bytes(self._tail[-TAIL_BYTES:]))
