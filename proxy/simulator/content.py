"""What the simulated model says: deterministic text, token counts and embeddings."""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Sequence

__all__ = [
    "CHARS_PER_TOKEN",
    "count_tokens",
    "embedding",
    "rng_for",
    "split_tokens",
    "text_reply",
    "truncated_tokens",
]

CHARS_PER_TOKEN = 4

_VOCAB_TEXT = (
    "the a of to and in that is it for as with on this by be are from at an or we which "
    "model queue lane request slot token answer simple clear small fast steady order fair "
    "first next each every light river stone signal pattern number reason because so then "
    "however also often rather quite mostly careful useful local shared patient measured"
)
_VOCAB = tuple(_VOCAB_TEXT.split(" "))

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{1,}")


def rng_for(seed: int, *parts: str) -> random.Random:
    """A random generator determined by the run's seed and some text (stable across runs)."""
    digest = hashlib.sha256(str(seed).encode())
    for part in parts:
        digest.update(b"\0" + part.encode("utf-8", "replace"))
    return random.Random(int.from_bytes(digest.digest()[:8], "big"))


def count_tokens(text: str) -> int:
    """Simulated tokenizer: one token per 4 characters, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def split_tokens(text: str) -> list[str]:
    """Cut text into the 4-character pieces that stream as one chunk each."""
    return [text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN)]


def truncated_tokens(prompt_tokens: int, num_ctx: int, num_keep: int = 4) -> int:
    """Tokens the model sees (v0.30+): num_ctx - (num_ctx - num_keep) // 2 when over num_ctx."""
    if prompt_tokens <= num_ctx:
        return prompt_tokens
    keep = max(0, min(num_keep, num_ctx))
    return num_ctx - (num_ctx - keep) // 2


def text_reply(seed: int, prompt: str, tokens: int | None) -> str:
    """Plain prose: exactly `tokens` tokens when given, else 20-200 tokens chosen by the seed."""
    rng = rng_for(seed, "text", prompt)
    target = tokens if tokens is not None else rng.randint(20, 200)
    own = [w.lower() for w in _WORD.findall(prompt[-4000:])][:400]
    words = own + list(_VOCAB) if own else list(_VOCAB)
    length = target * CHARS_PER_TOKEN
    parts: list[str] = []
    size = 0
    sentence = 0
    while size < length:
        word = rng.choice(words)
        if sentence == 0:
            word = word.capitalize()
        sentence += 1
        if sentence >= rng.randint(6, 14):
            word += "."
            sentence = 0
        piece = word if not parts else " " + word
        parts.append(piece)
        size += len(piece)
    text = "".join(parts)
    if tokens is not None:
        return text[:length]
    text = text.rstrip(".,") + "."
    return text


def embedding(seed: int, text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for `text`."""
    rng = rng_for(seed, "embed", text)
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 7) for v in vector]


def chat_prompt_tokens(messages: Sequence[tuple[str, str]], num_ctx: int) -> tuple[int, int]:
    """Tokens of a chat prompt before and after Ollama drops old messages to fit num_ctx.

    Oldest non-system messages go first; system messages and the last message always stay.
    Returns (full, kept) token counts; `kept` may still exceed num_ctx (a token cut follows).
    """
    counts = [count_tokens(content) for _, content in messages]
    full = sum(counts)
    kept = full
    for i, (role, _) in enumerate(messages[:-1]):
        if kept <= num_ctx:
            break
        if role != "system":
            kept -= counts[i]
    return full, kept
