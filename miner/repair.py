"""Reading a model reply: parse, validate, repair with the contract's maps and defaults (pure)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from miner.schema import KINDS, MinerOutput

__all__ = ["Extraction", "ReplyError", "extract", "parse_reply", "repair"]

_OBJECT = re.compile(r"\{.*\}", re.DOTALL)

ENUM_MAPS: dict[str, tuple[dict[str, str], str]] = {
    "claim_type": (
        {
            "predictive": "forecast",
            "evaluative": "normative",
            "descriptive": "factual",
            "analytical": "causal",
            "assertion": "factual",
            "assumption": "normative",
        },
        "factual",
    ),
    "stance": (
        {
            "positive": "asserts",
            "suggests": "asserts",
            "supports": "asserts",
            "negative": "opposes",
            "rejects": "opposes",
            "denies": "opposes",
            "inquires": "questions",
            "asks": "questions",
            "uncertain": "neutral",
            "ambiguous": "neutral",
        },
        "neutral",
    ),
    "context_type": (
        {"sentence": "exact", "partial": "exact", "paragraph": "extended", "full": "segment"}
        | {"complete": "segment"},
        "exact",
    ),
    "entity_type": (
        {"event": "person", "concept": "person"}
        | dict.fromkeys(("place", "location", "thing", "object"), "organization"),
        "person",
    ),
}
_VALID = {
    "claim_type": {"factual", "causal", "normative", "forecast", "definition"},
    "stance": {"asserts", "questions", "opposes", "neutral"},
    "context_type": {"exact", "extended", "segment"},
    "entity_type": {"person", "organization"},
}
_FLAT = ("evidence_quote", "context_quote", "timestamp", "evidence_timestamp")


class ReplyError(Exception):
    """The reply cannot be used; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Extraction:
    """Validated items by kind, and whether (and how) repair was needed."""

    items: dict[str, list[dict[str, Any]]]
    repaired: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of items kept."""
        return sum(len(v) for v in self.items.values())


def parse_reply(text: str) -> dict[str, Any]:
    """`json.loads`, else the outermost `{...}`; a top-level list gives its first element."""
    try:
        doc: Any = json.loads(text)
    except json.JSONDecodeError as first:
        match = _OBJECT.search(text)
        if match is None:
            raise ReplyError(f"reply is not JSON: {first.msg} at char {first.pos}") from None
        try:
            doc = json.loads(match.group(0))
        except json.JSONDecodeError as exc:
            raise ReplyError(f"reply is not JSON: {exc.msg} at char {exc.pos}") from None
    if isinstance(doc, list):
        doc = doc[0] if doc else None
    if not isinstance(doc, dict):
        raise ReplyError(f"reply is JSON but not an object ({type(doc).__name__})")
    return doc


def _fix_enum(item: dict[str, Any], key: str) -> None:
    if key in item and item[key] not in _VALID[key]:
        mapping, fallback = ENUM_MAPS[key]
        item[key] = mapping.get(str(item[key]).strip().lower(), fallback)


def _fix_span(span: Any, segment_id: str) -> Any:
    if not isinstance(span, dict):
        return span
    if not isinstance(span.get("segment_id"), str) or not span["segment_id"]:
        span["segment_id"] = segment_id
    for key in ("t0", "t1", "context_t0", "context_t1"):
        if isinstance(span.get(key), int | float) and not isinstance(span[key], bool):
            span[key] = str(span[key])
    _fix_enum(span, "context_type")
    return span


def _migrate(item: dict[str, Any], kind: str, segment_id: str) -> None:
    """Flat (older prompt) shape -> nested evidence, contract §5."""
    key = "mentions" if kind == "people" else "evidence_spans"
    if key in item:
        return
    if not any(f in item for f in _FLAT):
        item[key] = []  # nothing to build evidence from: the item fails minItems and is dropped
        return
    quote = item.get("evidence_quote") or item.get("context_quote")
    stamp = item.get("evidence_timestamp") or item.get("timestamp") or "00:00"
    span: dict[str, Any] = {"segment_id": segment_id, "t0": stamp, "t1": stamp}
    if kind == "people":
        name = item.get("name")
        quote = quote or name
        span["surface_form"] = name
    elif kind == "claims":
        span["context_type"] = "exact"
    item[key] = [{**span, "quote": quote}] if quote else []
    for flat in _FLAT:
        item.pop(flat, None)


def _fix_item(item: Any, kind: str, segment_id: str) -> Any:
    if not isinstance(item, dict):
        return item
    _migrate(item, kind, segment_id)
    if kind in ("claims", "jargon"):
        item.setdefault("domain", "general")
    if kind == "claims":
        _fix_enum(item, "claim_type")
        _fix_enum(item, "stance")
    if kind == "people":
        item.setdefault("normalized_name", item.get("name") or "Unknown")
        item.setdefault("entity_type", "person")
        _fix_enum(item, "entity_type")
    if kind == "mental_models" and "definition" not in item:
        item["definition"] = item.pop("description", None) or ""
    spans = item.get("mentions" if kind == "people" else "evidence_spans")
    if isinstance(spans, list):
        for span in spans:
            _fix_span(span, segment_id)
    return item


def repair(doc: dict[str, Any], segment_id: str) -> dict[str, Any]:
    """A repaired deep copy of `doc`: missing arrays, flat fields, enum maps and defaults."""
    fixed = copy.deepcopy(doc)
    for kind in KINDS:
        value = fixed.get(kind)
        if not isinstance(value, list):
            fixed[kind] = []
            continue
        fixed[kind] = [_fix_item(item, kind, segment_id) for item in value]
    return fixed


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def extract(text: str, segment_id: str) -> Extraction:
    """Parse and validate a reply; repair it if needed, dropping only the invalid items.

    Raises ReplyError when the reply is not a JSON object, or when it held items and
    none of them survived repair (an empty result never stands in for a failure)."""
    doc = parse_reply(text)
    try:
        valid = MinerOutput.model_validate(doc)
    except ValidationError:
        pass
    else:
        dumped = valid.model_dump(mode="json", exclude_none=True)
        return Extraction({kind: dumped[kind] for kind in KINDS})
    fixed = repair(doc, segment_id)
    items: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    offered = 0
    for kind, model in KINDS.items():
        items[kind] = []
        for i, raw in enumerate(fixed[kind]):
            offered += 1
            try:
                item = model.model_validate(raw)
            except ValidationError as exc:
                notes.append(f"dropped {kind}[{i}]: {_first_error(exc)}")
                continue
            items[kind].append(item.model_dump(mode="json", exclude_none=True))
    kept = sum(len(v) for v in items.values())
    if offered and not kept:
        raise ReplyError(f"all {offered} items invalid after repair; first: {notes[0]}")
    return Extraction(items, repaired=True, notes=notes)
