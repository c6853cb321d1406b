"""Input formats: .txt/.md (plain or `[MM:SS] (Speaker): text`), .srt, .vtt, .json, .jsonl."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from miner.segments import UNKNOWN_SPEAKER, Turn

__all__ = ["SUFFIXES", "InputError", "Parsed", "discover", "parse_text", "read_source"]

SUFFIXES = (".txt", ".md", ".srt", ".vtt", ".json", ".jsonl")

_MD_TURN = re.compile(
    r"^\[(\d{1,2}:\d{2}(?::\d{2})?)\]\s*\(([^)]+)\):\s*(.*?)(?=^\[\d{1,2}:\d{2}|\Z)",
    re.MULTILINE | re.DOTALL,
)
_CUE_TIME = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_TAG = re.compile(r"<[^>]+>")
_VOICE = re.compile(r"^<v(?:\.[\w.-]+)?\s+([^>]+)>")
_LABEL = re.compile(r"^((?:[A-Z][\w.'-]*)(?: [A-Z][\w.'-]*){0,2}):\s+")


class InputError(Exception):
    """A file cannot be mined; the message says which file and why, in one line."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a file holds: its turns, and whether they may be merged into larger segments."""

    format: str
    turns: list[Turn]
    merge_turns: bool = True


def discover(inputs: list[Path]) -> tuple[list[Path], list[str]]:
    """Expand files and folders (recursively, known suffixes only); also return the errors."""
    files: list[Path] = []
    errors: list[str] = []
    for item in inputs:
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not found:
                errors.append(f"{item}: folder holds no {'/'.join(SUFFIXES)} files")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            errors.append(f"{item}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique, errors


def read_source(path: Path) -> Parsed:
    """Read and parse one file; raises InputError with a clear reason."""
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{path}: unsupported file type {path.suffix or '(none)'!r}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        parsed = parse_text(path.suffix.lower(), text)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    if not parsed.turns:
        raise InputError(f"{path}: no text to mine")
    return parsed


def parse_text(suffix: str, text: str) -> Parsed:
    """Parse file contents by suffix (pure)."""
    if not text.strip():
        raise InputError("empty file")
    if suffix in (".txt", ".md"):
        return _parse_plain(text)
    if suffix == ".srt":
        return Parsed("srt", _parse_cues(text, vtt=False))
    if suffix == ".vtt":
        return Parsed("vtt", _parse_cues(text, vtt=True))
    if suffix == ".json":
        return Parsed("json", _parse_records(_load_json(text)), merge_turns=False)
    if suffix == ".jsonl":
        return Parsed("jsonl", _parse_records(_load_jsonl(text)), merge_turns=False)
    raise InputError(f"unsupported file type {suffix!r}")


def _parse_plain(text: str) -> Parsed:
    text = text.replace("\r\n", "\n")
    matches = list(_MD_TURN.finditer(text))
    if matches:
        turns: list[Turn] = []
        for i, m in enumerate(matches):
            t1 = matches[i + 1].group(1) if i + 1 < len(matches) else m.group(1)
            body = " ".join(m.group(3).split())
            if body:
                turns.append(Turn(m.group(2).strip(), m.group(1), t1, body))
        return Parsed("transcript", turns)
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip().lstrip("#").strip() for ln in block.splitlines()]
        lines = [ln for ln in lines if ln and not re.fullmatch(r"[-*_=]{3,}", ln)]
        if lines:
            paragraphs.append(" ".join(lines))
    return Parsed("text", [Turn(UNKNOWN_SPEAKER, "", "", p) for p in paragraphs])


def _cue_blocks(text: str) -> Iterator[list[str]]:
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        lines = [ln.rstrip() for ln in block.split("\n") if ln.strip()]
        if lines:
            yield lines


def _parse_cues(text: str, *, vtt: bool) -> list[Turn]:
    blocks = list(_cue_blocks(text))
    if vtt:
        if not blocks or not blocks[0][0].startswith("WEBVTT"):
            raise InputError("missing WEBVTT header")
        blocks = blocks[1:]
    turns: list[Turn] = []
    speaker = UNKNOWN_SPEAKER
    for number, lines in enumerate(blocks, start=1):
        if vtt and lines[0].split(" ", 1)[0] in ("NOTE", "STYLE", "REGION"):
            continue
        at = next((i for i, ln in enumerate(lines[:2]) if _CUE_TIME.match(ln)), None)
        if at is None:
            raise InputError(f"cue {number}: no 'start --> end' timing line")
        if not vtt and at == 1 and not lines[0].strip().isdigit():
            raise InputError(f"cue {number}: expected a cue number, got {lines[0][:40]!r}")
        timing = _CUE_TIME.match(lines[at])
        assert timing is not None
        body = " ".join(lines[at + 1 :]).strip()
        voice = _VOICE.match(body)
        if voice:
            speaker = voice.group(1).strip()
        else:
            label = _LABEL.match(_TAG.sub("", body))
            if label:
                speaker = label.group(1)
                body = _TAG.sub("", body)[label.end() :]
        body = " ".join(_TAG.sub("", body).split())
        if body:
            turns.append(Turn(speaker, timing.group(1), timing.group(2), body))
    return turns


def _load_json(text: str) -> list[Any]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if isinstance(doc, dict) and isinstance(doc.get("segments"), list):
        doc = doc["segments"]
    if not isinstance(doc, list):
        raise InputError('expected a JSON list of segments (or {"segments": [...]})')
    return doc


def _load_jsonl(text: str) -> list[Any]:
    records: list[Any] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON on line {number}: {exc.msg}") from exc
    return records


def _stamp(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(f"timestamp must be a string or number, got {value!r}")
    return str(value)


def _parse_records(records: list[Any]) -> list[Turn]:
    turns: list[Turn] = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InputError(f"segment {number}: expected an object, got {type(record).__name__}")
        body = record.get("text")
        if not isinstance(body, str):
            raise InputError(f"segment {number}: missing or non-string 'text'")
        speaker = record.get("speaker") or UNKNOWN_SPEAKER
        if not isinstance(speaker, str):
            raise InputError(f"segment {number}: 'speaker' must be a string")
        t0, t1 = _stamp(record.get("t0")), _stamp(record.get("t1"))
        if body.strip():
            turns.append(Turn(speaker, t0, t1, " ".join(body.split())))
    return turns
