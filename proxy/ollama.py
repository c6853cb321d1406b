"""Pure Ollama knowledge: which paths take a lane, error bodies, the records its answers hold."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "INFERENCE_PATHS",
    "InstalledModel",
    "LoadedModel",
    "ModelFacts",
    "default_num_parallel",
    "error_body",
    "is_inference",
    "is_openai",
    "parse_ps",
    "parse_show",
    "parse_tags",
    "prompt_chars",
]

INFERENCE_PATHS = frozenset(
    {
        "/api/generate",
        "/api/chat",
        "/api/embed",
        "/api/embeddings",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/responses",
        "/v1/messages",
    }
)
_COMPACT = (",", ":")  # Go's encoding/json spacing
_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


def is_inference(method: str, path: str) -> bool:
    """True for the requests that must take a lane."""
    return method == "POST" and path in INFERENCE_PATHS


def is_openai(path: str) -> bool:
    """True for the OpenAI-compatible (and Anthropic) routes, which use OpenAI's error shape."""
    return path.startswith("/v1/")


def error_body(path: str, status: int, message: str) -> bytes:
    """Ollama's `{"error": ...}` on native paths; OpenAI's envelope on `/v1`."""
    if not is_openai(path):
        return json.dumps({"error": message}, separators=_COMPACT).encode()
    kind = _OPENAI_TYPES.get(status, "api_error")
    envelope = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return json.dumps(envelope, separators=_COMPACT).encode()


def _text_length(value: Any) -> int:
    """Characters of text in a prompt field: a string, a list, a message or a content part."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_text_length(part) for part in value)
    if isinstance(value, dict):  # a message's `content`, or an OpenAI part's `text`
        return _text_length(value.get("content")) + _text_length(value.get("text"))
    return 0


_PROMPT_FIELDS = ("prompt", "system", "suffix", "messages", "input", "instructions")


def prompt_chars(doc: Mapping[str, Any]) -> int:
    """Characters of prompt text in an inference body, about 4 per token (reference §6.8):
    `prompt`, `system`, `suffix`, every message's content, `input` and `instructions`."""
    return sum(_text_length(doc.get(key)) for key in _PROMPT_FIELDS)


def default_num_parallel(version: str | None) -> int | None:
    """Ollama's NUM_PARALLEL when unset: 1, except v0.2.0-v0.9.x chose it (None)."""
    match = re.match(r"v?(\d+)\.(\d+)", version or "")
    if match is None:
        return 1
    major_minor = (int(match[1]), int(match[2]))
    return None if (0, 2) <= major_minor < (0, 10) else 1


class LoadedModel(BaseModel):
    """One entry of `/api/ps`: a model loaded on one Ollama host."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    context_length: int | None
    size_vram_bytes: int | None
    expires_at: str | None
    size_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """One entry of `/api/tags`: a model installed on one Ollama host."""

    name: str
    digest: str = ""


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What `/api/show` tells about one model."""

    name: str
    capabilities: tuple[str, ...] = ()
    architecture: str | None = None
    model_info: Mapping[str, object] = field(default_factory=dict)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _entries(doc: Any) -> list[dict[str, Any]]:
    models = doc.get("models") if isinstance(doc, dict) else None
    return [
        m
        for m in (models if isinstance(models, list) else [])
        if isinstance(m, dict) and isinstance(m.get("name"), str)
    ]


def parse_ps(doc: Any) -> list[LoadedModel]:
    """The loaded models of an `/api/ps` answer; odd entries are skipped."""
    return [
        LoadedModel(
            name=entry["name"],
            context_length=_int(entry.get("context_length")),
            size_vram_bytes=_int(entry.get("size_vram")),
            expires_at=entry["expires_at"] if isinstance(entry.get("expires_at"), str) else None,
            size_bytes=_int(entry.get("size")),
        )
        for entry in _entries(doc)
    ]


def parse_tags(doc: Any) -> list[InstalledModel]:
    """The installed models of an `/api/tags` answer; odd entries are skipped."""
    return [
        InstalledModel(name=entry["name"], digest=str(entry.get("digest") or ""))
        for entry in _entries(doc)
    ]


def parse_show(name: str, doc: Any) -> ModelFacts:
    """The capabilities and architecture of an `/api/show` answer."""
    if not isinstance(doc, dict):
        return ModelFacts(name)
    caps = doc.get("capabilities")
    info = doc.get("model_info")
    info = dict(info) if isinstance(info, dict) else {}
    arch = info.get("general.architecture")
    return ModelFacts(
        name=name,
        capabilities=tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else (),
        architecture=arch if isinstance(arch, str) else None,
        model_info=info,
    )
