"""Segments: turns from a source cut into segments along speaker turns and sentence ends (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "UNKNOWN_SPEAKER",
    "Budget",
    "Segment",
    "Turn",
    "estimate_tokens",
    "segment_id",
    "segment_turns",
    "split_sentences",
]

UNKNOWN_SPEAKER = "Unknown"

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


@dataclass(frozen=True, slots=True)
class Turn:
    """One piece of a source as read: a speaker's words between two timestamps (opaque strings)."""

    speaker: str
    t0: str
    t1: str
    text: str


@dataclass(frozen=True, slots=True)
class Budget:
    """Segment size in estimated tokens: close after `min_tokens`, never exceed `max_tokens`."""

    min_tokens: int = 300
    max_tokens: int = 1000


@dataclass(frozen=True, slots=True)
class Segment:
    """One unit of work: the text sent in one request, with its stable id."""

    source_id: str
    segment_id: str
    index: int
    speaker: str
    t0: str
    t1: str
    text: str

    @property
    def tokens(self) -> int:
        """Estimated tokens (characters / 4)."""
        return estimate_tokens(self.text)


def estimate_tokens(text: str) -> int:
    """Token estimate used everywhere in the miner: characters / 4, rounded up."""
    return (len(text) + 3) // 4


def segment_id(source_id: str, index: int, text: str) -> str:
    """Stable id from source, index and content: `seg_0007_1a2b3c4d5e`."""
    digest = hashlib.sha256(f"{source_id}\0{index}\0{text}".encode()).hexdigest()[:10]
    return f"seg_{index:04d}_{digest}"


def split_sentences(text: str) -> list[str]:
    """Split at sentence ends (., !, ?, … followed by space); keeps every character but spacing."""
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    return [p for p in parts if p]


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut one over-long sentence at word boundaries into pieces of at most `max_chars`."""
    pieces: list[str] = []
    current = ""
    for word in sentence.split():
        while len(word) > max_chars:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > max_chars and current:
            pieces.append(current)
            current = word
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


@dataclass(slots=True)
class _Open:
    speaker: str
    t0: str
    t1: str
    parts: list[str]

    @property
    def chars(self) -> int:
        return sum(len(p) for p in self.parts) + max(0, len(self.parts) - 1)


def _chunks(turns: Iterable[Turn], budget: Budget, merge_turns: bool) -> list[_Open]:
    """Group turns into chunks: a speaker change always closes a chunk; so does reaching
    `min_tokens` at a sentence end; a sentence that would pass `max_tokens` starts a new one."""
    max_chars = budget.max_tokens * 4
    min_chars = budget.min_tokens * 4
    chunks: list[_Open] = []
    current: _Open | None = None
    for turn in turns:
        if current is not None and (not merge_turns or turn.speaker != current.speaker):
            chunks.append(current)
            current = None
        for sentence in split_sentences(turn.text):
            for piece in _split_long(sentence, max_chars):
                if current is not None and current.chars + 1 + len(piece) > max_chars:
                    chunks.append(current)
                    current = None
                if current is None:
                    current = _Open(turn.speaker, turn.t0, turn.t1, [piece])
                else:
                    current.parts.append(piece)
                    current.t1 = turn.t1
                if current.chars >= min_chars:
                    chunks.append(current)
                    current = None
    if current is not None:
        chunks.append(current)
    return chunks


def segment_turns(
    source_id: str, turns: Sequence[Turn], budget: Budget, *, merge_turns: bool = True
) -> list[Segment]:
    """Cut `turns` into segments with stable ids. With `merge_turns` False every turn starts
    a new segment (used for JSON inputs, whose records are already segments)."""
    return [
        Segment(
            source_id=source_id,
            segment_id=segment_id(source_id, i, " ".join(c.parts)),
            index=i,
            speaker=c.speaker,
            t0=c.t0,
            t1=c.t1,
            text=" ".join(c.parts),
        )
        for i, c in enumerate(_chunks(turns, budget, merge_turns))
    ]
