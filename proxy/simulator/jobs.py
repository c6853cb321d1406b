"""Request bodies to jobs: validation with Ollama's error texts, prompts, token counts (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from proxy.simulator.catalog import ModelSpec
from proxy.simulator.content import (
    chat_prompt_tokens,
    count_tokens,
    split_tokens,
    text_reply,
    truncated_tokens,
)
from proxy.simulator.model import LoadOptions, Simulation
from proxy.simulator.schema import json_reply
from proxy.simulator.settings import go_duration_s
from proxy.simulator.wire import not_found_model

__all__ = ["ApiError", "Job", "chat_job", "decode_body", "generate_job", "parse_keep_alive"]

_INT_OPTIONS = (
    "num_ctx",
    "num_predict",
    "num_batch",
    "num_keep",
    "top_k",
    "seed",
    "num_thread",
    "num_gpu",
    "main_gpu",
    "repeat_last_n",
)


class ApiError(Exception):
    """An error answered before streaming starts: HTTP status and Ollama's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_body(raw: bytes, go_type: str = "api.GenerateRequest") -> dict[str, Any]:
    """Parse a JSON object body, failing the way Go's decoder words it."""
    if not raw.strip():
        raise ApiError(400, "missing request body")
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(exc.doc.rstrip()):
            raise ApiError(400, "unexpected EOF") from None
        char = exc.doc[exc.pos]
        where = "beginning of value" if exc.msg.startswith("Expecting value") else "value"
        raise ApiError(400, f"invalid character {char!r} looking for {where}") from None
    if not isinstance(body, dict):
        kind = {list: "array", str: "string", bool: "bool"}.get(type(body), "number")
        raise ApiError(400, f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    return body


def parse_keep_alive(value: Any) -> float | None:
    """keep_alive as seconds (negative = forever): a number of seconds or a Go duration."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ApiError(400, "invalid keep_alive")
    try:
        return go_duration_s(value)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _options(body: Mapping[str, Any]) -> dict[str, Any]:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "json: cannot unmarshal options")
    for key in _INT_OPTIONS:
        value = options.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(500, f'option "{key}" must be of type integer')
    return options


@dataclass(frozen=True)
class Job:
    """One inference request, ready to run."""

    kind: Literal["generate", "chat"]
    model: str  # as the client wrote it; echoed in every reply
    spec: ModelSpec
    prompt: str  # what the reply's words come from (never logged)
    options: LoadOptions
    prompt_tokens: int  # before truncation
    seen_tokens: int  # after truncation: prompt_eval_count
    num_predict: int | None
    fmt: Any
    keep_alive_s: float | None
    stream: bool
    empty: bool  # empty prompt / messages: load (or unload with keep_alive 0)
    raw: bool = False

    def reply(self, seed: int) -> tuple[list[str], str]:
        """The reply cut into streamed pieces, and the done_reason."""
        if self.fmt:
            pieces = split_tokens(json_reply(seed, self.prompt, self.fmt))
        else:
            pieces = split_tokens(text_reply(seed, self.prompt, self.num_predict))
        if self.num_predict is not None and len(pieces) >= self.num_predict:
            return pieces[: self.num_predict], "length"
        return pieces, "stop"


def _base(body: Mapping[str, Any], sim: Simulation, kind: str) -> tuple[str, ModelSpec]:
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "model is required")
    spec = sim.resolve(name)
    if spec is None:
        raise ApiError(404, not_found_model(name))
    if spec.embedding_only:
        raise ApiError(400, f'"{name}" does not support {kind}')
    think = body.get("think")
    if think not in (None, False, ""):
        raise ApiError(400, f'"{name}" does not support thinking')
    top = body.get("top_logprobs")
    if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
        raise ApiError(400, "top_logprobs must be between 0 and 20")
    return name, spec


def _stream(body: Mapping[str, Any], default: bool) -> bool:
    value = body.get("stream")
    return default if value is None else bool(value)


def _num_predict(options: Mapping[str, Any]) -> int | None:
    value = options.get("num_predict")
    return int(value) if isinstance(value, int | float) and value > 0 else None


def generate_job(body: Mapping[str, Any], sim: Simulation, *, stream_default: bool = True) -> Job:
    """Validate an /api/generate body."""
    name, spec = _base(body, sim, "generate")
    prompt = body.get("prompt") or ""
    system = body.get("system") or ""
    if not isinstance(prompt, str) or not isinstance(system, str):
        raise ApiError(400, "json: cannot unmarshal prompt into Go value of type string")
    raw = bool(body.get("raw"))
    if raw and (body.get("template") or system or body.get("context")):
        raise ApiError(400, "raw mode does not support template, system, or context")
    options = _options(body)
    load = sim.options_for(spec, options)
    full = count_tokens(system + prompt) if prompt else 0
    num_keep = int(options.get("num_keep", 4))
    return Job(
        kind="generate",
        model=name,
        spec=spec,
        prompt=(system + "\n" + prompt) if system else prompt,
        options=load,
        prompt_tokens=full,
        seen_tokens=truncated_tokens(full, load.num_ctx, num_keep),
        num_predict=_num_predict(options),
        fmt=body.get("format") or None,
        keep_alive_s=parse_keep_alive(body.get("keep_alive")),
        stream=_stream(body, stream_default),
        empty=not prompt,
        raw=raw,
    )


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
    return "" if value is None else str(value)


def chat_job(body: Mapping[str, Any], sim: Simulation, *, stream_default: bool = True) -> Job:
    """Validate an /api/chat body (also used for OpenAI chat after translation)."""
    name, spec = _base(body, sim, "chat")
    messages = body.get("messages") or []
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "json: cannot unmarshal messages into Go value of type api.Message")
    pairs = [(str(m.get("role", "user")), _content(m.get("content"))) for m in messages]
    options = _options(body)
    load = sim.options_for(spec, options)
    full, kept = chat_prompt_tokens(pairs, load.num_ctx) if pairs else (0, 0)
    num_keep = int(options.get("num_keep", 4))
    return Job(
        kind="chat",
        model=name,
        spec=spec,
        prompt="\n".join(content for _, content in pairs),
        options=load,
        prompt_tokens=full,
        seen_tokens=truncated_tokens(kept, load.num_ctx, num_keep),
        num_predict=_num_predict(options),
        fmt=body.get("format") or None,
        keep_alive_s=parse_keep_alive(body.get("keep_alive")),
        stream=_stream(body, stream_default),
        empty=not pairs,
    )
