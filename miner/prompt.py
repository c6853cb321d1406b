"""The extraction request: versioned template (package data), then the segment last (pure)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any, Literal

from miner.schema import FORMAT_SCHEMA
from miner.segments import Segment, estimate_tokens

__all__ = [
    "FALLBACK_TEMPERATURE",
    "TEMPLATE_NAME",
    "build_body",
    "chat_path",
    "fit_warnings",
    "prompt_text",
    "prompt_version",
    "static_prompt",
]

TEMPLATE_NAME = "extract.v1"
FALLBACK_TEMPERATURE = 0.3
Api = Literal["ollama", "openai"]


@cache
def static_prompt() -> str:
    """The static part of every prompt (instruction, schema, example): identical bytes each call,
    so Ollama can reuse the cached prefix."""
    path = Path(__file__).resolve().parent / "prompts" / f"{TEMPLATE_NAME}.txt"
    template = path.read_text(encoding="utf-8")
    schema = json.dumps(FORMAT_SCHEMA, separators=(",", ":"))
    return template.replace("{{SCHEMA}}", schema).rstrip("\n") + "\n"


@cache
def prompt_version() -> str:
    """Template name plus a hash of the rendered static prompt, stored with every result."""
    digest = hashlib.sha256(static_prompt().encode()).hexdigest()[:8]
    return f"{TEMPLATE_NAME}+{digest}"


def prompt_text(segment: Segment) -> str:
    """The one user message: static prompt first, the segment as JSON last."""
    record = {
        "segment_id": segment.segment_id,
        "speaker": segment.speaker,
        "timestamp_start": segment.t0,
        "timestamp_end": segment.t1,
        "text": segment.text,
    }
    return static_prompt() + json.dumps(record, ensure_ascii=False, indent=2)


def chat_path(api: Api) -> str:
    """The endpoint for an API flavour."""
    return "/api/chat" if api == "ollama" else "/v1/chat/completions"


def build_body(
    segment: Segment,
    *,
    api: Api,
    model: str,
    num_ctx: int,
    num_predict: int,
    keep_alive: str,
    fallback: bool = False,
) -> dict[str, Any]:
    """The JSON body. The first call constrains output to the schema at temperature 0; the
    fallback call drops the constraint and uses temperature 0.3. `num_ctx` never changes,
    so no call forces a model reload."""
    messages = [{"role": "user", "content": prompt_text(segment)}]
    temperature = FALLBACK_TEMPERATURE if fallback else 0.0
    if api == "openai":
        body: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "stream": False,
            "temperature": temperature,
            "max_tokens": num_predict,
        }
        if not fallback:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "miner_output", "schema": FORMAT_SCHEMA},
            }
        return body
    body = {
        "model": model,
        "messages": messages,
        "stream": False,
        "options": {"temperature": temperature, "num_ctx": num_ctx, "num_predict": num_predict},
        "keep_alive": keep_alive,
    }
    if not fallback:
        body["format"] = FORMAT_SCHEMA
    return body


def fit_warnings(largest: Segment, *, num_ctx: int, num_predict: int) -> list[str]:
    """Warnings when the prompt plus the largest segment (and the output cap) exceed num_ctx."""
    need = estimate_tokens(prompt_text(largest))
    if need > num_ctx:
        return [
            f"prompt plus the largest segment ({largest.segment_id}) is ~{need} tokens but "
            f"num_ctx is {num_ctx}: Ollama will truncate it; raise num_ctx or lower "
            "segment_max_tokens"
        ]
    if need + num_predict > num_ctx:
        return [
            f"prompt plus the largest segment ({largest.segment_id}) is ~{need} tokens; with "
            f"num_predict {num_predict} that exceeds num_ctx {num_ctx}, so long answers may be cut"
        ]
    return []
