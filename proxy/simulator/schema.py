"""Structured output: a small JSON-Schema instance generator fed with the prompt's own words."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.simulator.content import rng_for

__all__ = ["PromptSource", "find_source", "generate_instance", "infer_schema", "json_reply"]

_MAX_DEPTH = 12
_TIMESTAMP = re.compile(r"\b(?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?\b")
_FALLBACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "minLength": 1}},
    "required": ["answer"],
}


@dataclass
class PromptSource:
    """What string values are drawn from: the segment text and the segment's own fields."""

    text: str
    fields: dict[str, str] = field(default_factory=dict)
    schema: dict[str, Any] | None = None  # a JSON Schema found in the prompt
    example: Any = None  # the richest example JSON found in the prompt
    _spans: list[tuple[int, int]] | None = field(default=None, repr=False)

    @property
    def spans(self) -> list[tuple[int, int]]:
        """(start, end) of each word of the text."""
        if self._spans is None:
            self._spans = [m.span() for m in re.finditer(r"\S+", self.text)]
        return self._spans


def _embedded_json(prompt: str) -> list[Any]:
    decoder = json.JSONDecoder()
    found: list[Any] = []
    pos = prompt.find("{")
    while pos != -1:
        try:
            obj, end = decoder.raw_decode(prompt, pos)
        except ValueError:
            pos = prompt.find("{", pos + 1)
            continue
        found.append(obj)
        pos = prompt.find("{", end)
    return found


def _size(obj: Any) -> int:
    if isinstance(obj, dict):
        return 1 + sum(_size(v) for v in obj.values())
    if isinstance(obj, list):
        return 1 + sum(_size(v) for v in obj)
    return 1


def find_source(prompt: str) -> PromptSource:
    """Find the segment (a flat JSON object with a long string), any schema and any example."""
    objects = [o for o in _embedded_json(prompt) if isinstance(o, dict)]
    flat = [o for o in objects if o and all(isinstance(v, str | int | float) for v in o.values())]
    segment = next((o for o in reversed(flat) if any(_is_prose(v) for v in o.values())), None)
    schemas = [o for o in objects if "properties" in o or o.get("type") in ("object", "array")]
    rich = [o for o in objects if o is not segment and o not in schemas and o not in flat]
    source = PromptSource(text=prompt)
    if segment is not None:
        prose = max((v for v in segment.values() if isinstance(v, str)), key=len)
        source.text = prose
        source.fields = {k: str(v) for k, v in segment.items()}
    else:
        source.text = " ".join(prompt.split()[-300:])
    if schemas:
        source.schema = max(schemas, key=_size)
    if rich:
        source.example = max(rich, key=_size)
    return source


def _is_prose(value: object) -> bool:
    return isinstance(value, str) and len(value.split()) >= 3


def infer_schema(example: Any) -> dict[str, Any]:
    """A schema that the example satisfies; single lowercase words become enums."""
    if isinstance(example, dict):
        props = {k: infer_schema(v) for k, v in example.items()}
        return {"type": "object", "properties": props, "required": list(example)}
    if isinstance(example, list):
        items = infer_schema(example[0]) if example else {"type": "string"}
        return {"type": "array", "items": items, "minItems": 1 if example else 0}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number", "minimum": 0, "maximum": max(1.0, example)}
    if isinstance(example, str) and re.fullmatch(r"[a-z][a-z_-]{1,24}", example):
        return {"enum": [example]}
    return {"type": "string"}


class _Generator:
    def __init__(self, root: Mapping[str, Any], source: PromptSource, rng: random.Random) -> None:
        self.root = root
        self.source = source
        self.rng = rng

    def value(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return None if depth > _MAX_DEPTH else self.string(name, {})
        if "$ref" in schema:
            return self.value(self._ref(str(schema["$ref"])), name, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(list(schema["enum"]))
        for key in ("anyOf", "oneOf", "allOf"):
            options = [o for o in schema.get(key, ()) if o.get("type") != "null"]
            if options:
                merged = {k: v for k, v in schema.items() if k != key} | options[0]
                return self.value(merged, name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = (
                "object" if "properties" in schema else "array" if "items" in schema else "string"
            )
        return self._typed(str(kind), schema, name, depth)

    def _typed(self, kind: str, schema: Mapping[str, Any], name: str, depth: int) -> Any:
        if kind == "object":
            props: Mapping[str, Any] = schema.get("properties", {})
            required = set(schema.get("required", ()))
            return {
                k: self.value(sub, k, depth + 1)
                for k, sub in props.items()
                if k in required or self.rng.random() < 0.5
            }
        if kind == "array":
            low = int(schema.get("minItems", 0))
            high = int(schema.get("maxItems", max(low, 3)))
            count = min(high, max(low, self.rng.randint(1, 3)))
            item = schema.get("items", {"type": "string"})
            singular = name[:-1] if name.endswith("s") else name
            return [self.value(item, singular, depth + 1) for _ in range(count)]
        if kind in ("number", "integer"):
            return self._number(kind, schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(name, schema)

    def _number(self, kind: str, schema: Mapping[str, Any]) -> float | int:
        low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0)))
        high = float(schema.get("maximum", schema.get("exclusiveMaximum", low + 100)))
        if kind == "integer":
            return self.rng.randint(int(low) + ("exclusiveMinimum" in schema), int(high))
        value = round(self.rng.uniform(low, high), 2)
        return min(max(value, low), high)

    def string(self, name: str, schema: Mapping[str, Any]) -> str:
        key = name.lower()
        fields = self.source.fields
        if key in fields:
            text = fields[key]
        elif key in ("t0", "start", "timestamp", "start_time") or key.endswith("_t0"):
            text = self._timestamp(("timestamp_start", "t0", "start"), 0)
        elif key in ("t1", "end", "end_time") or key.endswith("_t1"):
            text = self._timestamp(("timestamp_end", "t1", "end"), -1)
        elif key.endswith("_id") and fields:
            text = next((v for k, v in fields.items() if k.endswith("_id")), "1")
        elif key in ("name", "term", "surface_form", "normalized_name", "title"):
            text = self._span(1, 3)
        else:
            text = self._span(3, 12)
        return self._fit(text, schema)

    def _timestamp(self, keys: tuple[str, ...], index: int) -> str:
        for key in keys:
            if key in self.source.fields:
                return self.source.fields[key]
        stamps = _TIMESTAMP.findall(self.source.text)
        return stamps[index] if stamps else "00:00"

    def _span(self, low: int, high: int) -> str:
        """A run of consecutive words: a real substring of the source text."""
        spans = self.source.spans
        if not spans:
            return "ok"
        count = min(len(spans), self.rng.randint(low, high))
        first = self.rng.randint(0, len(spans) - count)
        return self.source.text[spans[first][0] : spans[first + count - 1][1]]

    def _fit(self, text: str, schema: Mapping[str, Any]) -> str:
        low = int(schema.get("minLength", 0))
        if len(text) < low:  # grow into a longer real substring when the source allows
            source = self.source.text
            at = max(source.find(text), 0) if text else 0
            at = max(0, min(at, len(source) - low))
            text = source[at : at + low] if len(source) >= low else text
            while len(text) < low:
                text += " ok"
        high = schema.get("maxLength")
        return text[: int(high)] if high is not None else text

    def _ref(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.removeprefix("#").strip("/").split("/"):
            if part and isinstance(node, Mapping):
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
        return node


def generate_instance(schema: Mapping[str, Any], source: PromptSource, rng: random.Random) -> Any:
    """An instance valid under `schema` with strings taken from `source`."""
    return _Generator(schema, source, rng).value(schema)


def json_reply(seed: int, prompt: str, fmt: Any) -> str:
    """The JSON text answering `prompt` under `format` ("json" or a schema object)."""
    source = find_source(prompt)
    if isinstance(fmt, Mapping) and fmt:
        schema: Mapping[str, Any] = fmt
    elif source.schema is not None:
        schema = source.schema
    elif source.example is not None:
        schema = infer_schema(source.example)
    else:
        schema = _FALLBACK_SCHEMA
    instance = generate_instance(schema, source, rng_for(seed, "json", prompt))
    return json.dumps(instance, ensure_ascii=False)
