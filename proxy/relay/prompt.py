"""A request's prompt size, estimated from its body without keeping any of its text (pure)."""

from __future__ import annotations

from typing import Any

__all__ = ["CHARS_PER_TOKEN", "estimate_prompt_tokens", "streams"]

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers
_TEXT_FIELDS = ("prompt", "system", "suffix", "input", "instructions")
_NATIVE_STREAMING = frozenset({"/api/generate", "/api/chat"})  # stream defaults to true there


def _chars(value: Any) -> int:
    """Characters of text in a field: a string, a list of strings or of content parts."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_chars(item) for item in value)
    if isinstance(value, dict):  # an OpenAI content part: {"type": "text", "text": ...}
        return _chars(value.get("text")) + _chars(value.get("content"))
    return 0


def estimate_prompt_tokens(doc: dict[str, Any]) -> int:
    """Prompt tokens the body will likely cost: its text characters / CHARS_PER_TOKEN.

    Images and tool schemas are not counted; Ollama's own `prompt_eval_count` settles the
    charge when the answer ends (queue rule 4).
    """
    chars = 0
    for name in _TEXT_FIELDS:
        value = doc.get(name)
        if value is not None:
            chars += _chars(value)
    messages = doc.get("messages")
    if isinstance(messages, list):
        chars += sum(_chars(m.get("content")) for m in messages if isinstance(m, dict))
    return -(-chars // CHARS_PER_TOKEN)


def streams(path: str, doc: dict[str, Any]) -> bool:
    """True when the answer streams: `stream` as sent, else Ollama's default for the path."""
    value = doc.get("stream")
    if isinstance(value, bool):
        return value
    return path in _NATIVE_STREAMING
