"""Reading the project's Markdown for the doc tests: prose, tables, code blocks, links, anchors."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["Table", "anchors", "code_blocks", "links", "prose", "tables", "ticks"]

_FENCE = "```"
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")
_INLINE_CODE = re.compile(r"`[^`]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} +(.+?) *#*$")


@dataclass(frozen=True)
class Table:
    """One pipe table: its header cells and its rows of cells (escaped `\\|` kept as `|`)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def column(self, word: str) -> int | None:
        """The index of the first header cell containing `word` (any case), or None."""
        return next((i for i, h in enumerate(self.header) if word.lower() in h.lower()), None)


def prose(text: str) -> str:
    """`text` without its fenced code blocks (their lines become empty)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(_FENCE):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


def code_blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced blocks opened with ```language, in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if current is None and line.strip() == _FENCE + language:
            current = []
        elif current is not None and line.strip() == _FENCE:
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _cells(line: str) -> tuple[str, ...]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return tuple(cell.strip().replace("\\|", "|") for cell in _CELL_SPLIT.split(inner))


def tables(text: str) -> list[Table]:
    """Every pipe table outside code blocks."""
    lines = prose(text).splitlines()
    found: list[Table] = []
    i = 0
    while i + 1 < len(lines):
        head, rule = lines[i].strip(), lines[i + 1].strip().replace(" ", "")
        if head.startswith("|") and _SEPARATOR.match(rule):
            rows: list[tuple[str, ...]] = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            found.append(Table(_cells(head), tuple(rows)))
        else:
            i += 1
    return found


def ticks(cell: str) -> list[str]:
    """The inline-code spans of a cell, without their backticks."""
    return [span[1:-1] for span in _INLINE_CODE.findall(cell)]


def links(text: str) -> list[str]:
    """Link targets outside code (blocks and inline spans), in order."""
    plain = _INLINE_CODE.sub("code", prose(text))
    return _LINK.findall(plain)


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of `text`, `-1`, `-2` … on repeats."""
    seen: Counter[str] = Counter()
    out: set[str] = set()
    for line in prose(text).splitlines():
        match = _HEADING.match(line)
        if match is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        out.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return out
