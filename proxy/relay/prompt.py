"""A request's prompt size and streaming, read from its body without keeping any text (pure)."""

from __future__ import annotations

from typing import Any

__all__ = ["CHARS_PER_TOKEN", "estimate_prompt_tokens", "streams"]

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers
_NATIVE_STREAMING = frozenset({"/api/generate", "/api/chat"})  # stream defaults to true there


def estimate_prompt_tokens(chars: int) -> int:
    """Prompt tokens a body of `chars` prompt characters will likely cost (rounded up).

    Images and tool schemas are not counted; Ollama's own `prompt_eval_count` settles the
    charge when the answer ends (queue rule 4).
    """
    return -(-chars // CHARS_PER_TOKEN)


def streams(path: str, doc: dict[str, Any]) -> bool:
    """True when the answer streams: `stream` as sent, else Ollama's default for the path."""
    value = doc.get("stream")
    if isinstance(value, bool):
        return value
    return path in _NATIVE_STREAMING
