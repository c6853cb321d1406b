"""Exact Ollama and OpenAI-compatible bodies (ollama-api.md §4-5), as pure builders."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "BUSY_MESSAGE",
    "FinalStats",
    "chat_chunk",
    "chat_final",
    "dumps",
    "error_body",
    "generate_chunk",
    "generate_final",
    "load_reply",
    "ndjson",
    "not_found_embed",
    "not_found_model",
    "openai_chat_chunk",
    "openai_chat_completion",
    "openai_completion",
    "openai_completion_chunk",
    "openai_error",
    "openai_usage_chunk",
    "rfc3339",
    "rfc3339_now",
    "sse",
]

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
SSE_DONE = b"data: [DONE]\n\n"
FINGERPRINT = "fp_ollama"

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028"}
_GO_ESCAPES["\u2029"] = "\\u2029"


def dumps(obj: Any) -> str:
    """Compact JSON the way Go's encoding/json writes it (HTML characters escaped)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if any(ch in text for ch in _GO_ESCAPES):
        for raw, escaped in _GO_ESCAPES.items():
            text = text.replace(raw, escaped)
    return text


def ndjson(obj: Any) -> bytes:
    """One NDJSON line."""
    return (dumps(obj) + "\n").encode()


def sse(obj: Any) -> bytes:
    """One server-sent event carrying JSON."""
    return ("data: " + dumps(obj) + "\n\n").encode()


def rfc3339(epoch_ns: int) -> str:
    """UTC RFC 3339 with nanoseconds, trailing zeros trimmed, like Go's RFC3339Nano."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def rfc3339_now() -> str:
    """The current time as Ollama's `created_at`."""
    return rfc3339(time.time_ns())


@dataclass(frozen=True)
class FinalStats:
    """Final-chunk statistics; durations in integer nanoseconds."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0

    def fields(self) -> dict[str, int]:
        """The stats in Ollama's order, zero values left out (omitempty)."""
        pairs = (
            ("total_duration", self.total_duration),
            ("load_duration", self.load_duration),
            ("prompt_eval_count", self.prompt_eval_count),
            ("prompt_eval_duration", self.prompt_eval_duration),
            ("eval_count", self.eval_count),
            ("eval_duration", self.eval_duration),
        )
        return {k: v for k, v in pairs if v}


def generate_chunk(model: str, created_at: str, text: str) -> dict[str, Any]:
    return {"model": model, "created_at": created_at, "response": text, "done": False}


def generate_final(
    model: str,
    created_at: str,
    done_reason: str,
    stats: FinalStats,
    *,
    response: str = "",
    context: list[int] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "created_at": created_at,
        "response": response,
        "done": True,
        "done_reason": done_reason,
    }
    if context:
        body["context"] = context
    return body | stats.fields()


def chat_chunk(model: str, created_at: str, text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"model": model, "created_at": created_at, "message": message, "done": False}


def chat_final(
    model: str, created_at: str, done_reason: str, stats: FinalStats, *, content: str = ""
) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": created_at,
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": done_reason,
    } | stats.fields()


def load_reply(model: str, created_at: str, reason: str, *, chat: bool) -> dict[str, Any]:
    """The reply to an empty prompt (`load`) or an empty prompt with keep_alive 0 (`unload`)."""
    body: dict[str, Any] = {"model": model, "created_at": created_at}
    if chat:
        body["message"] = {"role": "assistant", "content": ""}
    else:
        body["response"] = ""
    return body | {"done": True, "done_reason": reason}


def error_body(message: str) -> dict[str, str]:
    return {"error": message}


def not_found_model(name: str) -> str:
    return f"model '{name}' not found"


def not_found_embed(name: str) -> str:
    return f'model "{name}" not found, try pulling it first'


def openai_error(message: str, status: int) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _openai_head(obj_id: str, obj: str, created: int, model: str) -> dict[str, Any]:
    return {
        "id": obj_id,
        "object": obj,
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }


def openai_chat_chunk(
    obj_id: str,
    created: int,
    model: str,
    content: str | None,
    *,
    first: bool = False,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A chat.completion.chunk: content (role on the first), or an empty finish delta."""
    delta: dict[str, str] = {}
    if first:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return _openai_head(obj_id, "chat.completion.chunk", created, model) | {"choices": [choice]}


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def openai_usage_chunk(
    obj_id: str, obj: str, created: int, model: str, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    usage = _usage(prompt_tokens, completion_tokens)
    return _openai_head(obj_id, obj, created, model) | {"choices": [], "usage": usage}


def openai_chat_completion(
    obj_id: str,
    created: int,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content},
        "finish_reason": finish_reason,
    }
    usage = _usage(prompt_tokens, completion_tokens)
    head = _openai_head(obj_id, "chat.completion", created, model)
    return head | {"choices": [choice], "usage": usage}


def openai_completion_chunk(
    obj_id: str, created: int, model: str, text: str, finish_reason: str | None = None
) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "finish_reason": finish_reason}
    return _openai_head(obj_id, "text_completion", created, model) | {"choices": [choice]}


def openai_completion(
    obj_id: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "finish_reason": finish_reason}
    usage = _usage(prompt_tokens, completion_tokens)
    head = _openai_head(obj_id, "text_completion", created, model)
    return head | {"choices": [choice], "usage": usage}
