"""Structured output: instances valid under the schema, strings taken from the prompt."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from proxy.simulator.schema import find_source, json_reply
from tests.fixtures_sim import SimulatorFactory
from tests.simulator.helpers import post_json

SEGMENT_TEXT = (
    "Well, as Fowler put it, small daily deploys are the safe ones.\n"
    "We canary it to one percent first, and the architecture is just our org chart."
)
SEGMENT = {
    "segment_id": "seg_0003",
    "speaker": "Ana",
    "timestamp_start": "12:04",
    "timestamp_end": "12:19",
    "text": SEGMENT_TEXT,
}
PROMPT = (
    "You extract claims, jargon, people and mental models. Answer with JSON only.\n"
    "Segment:\n" + json.dumps(SEGMENT, indent=2) + "\nReturn JSON only."
)

SPAN = {
    "type": "object",
    "required": ["segment_id", "quote", "t0", "t1"],
    "properties": {
        "segment_id": {"type": "string"},
        "quote": {"type": "string"},
        "t0": {"type": "string"},
        "t1": {"type": "string"},
        "context_type": {"enum": ["exact", "extended", "segment"]},
    },
}
SPANS = {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/span"}}
MINER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["claims", "jargon", "people", "mental_models"],
    "definitions": {"span": SPAN},
    "properties": {
        "claims": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["claim_text", "claim_type", "domain", "stance", "evidence_spans"],
                "properties": {
                    "claim_text": {"type": "string", "minLength": 10},
                    "claim_type": {
                        "enum": ["factual", "causal", "normative", "forecast", "definition"]
                    },
                    "domain": {"type": "string"},
                    "stance": {"enum": ["asserts", "questions", "opposes", "neutral"]},
                    "evidence_spans": SPANS,
                },
            },
        },
        "jargon": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["term", "definition", "domain", "evidence_spans"],
                "properties": {
                    "term": {"type": "string"},
                    "definition": {"type": "string"},
                    "domain": {"type": "string"},
                    "evidence_spans": SPANS,
                },
            },
        },
        "people": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "normalized_name", "entity_type", "mentions"],
                "properties": {
                    "name": {"type": "string"},
                    "normalized_name": {"type": "string"},
                    "entity_type": {"enum": ["person", "organization"]},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "mentions": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["segment_id", "surface_form", "quote", "t0", "t1"],
                            "properties": {
                                "segment_id": {"type": "string"},
                                "surface_form": {"type": "string"},
                                "quote": {"type": "string"},
                                "t0": {"type": "string"},
                                "t1": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "mental_models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "definition", "evidence_spans"],
                "properties": {
                    "name": {"type": "string"},
                    "definition": {"type": "string"},
                    "aliases": {"type": "array", "items": {"type": "string"}},
                    "evidence_spans": SPANS,
                },
            },
        },
    },
}


def violations(
    value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$"
) -> list[str]:
    """A deliberately small draft-07 checker, independent of the generator."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} not in enum")
    kind = schema.get("type")
    checks: dict[str, type | tuple[type, ...]] = {
        "object": dict,
        "array": list,
        "string": str,
        "number": (int, float),
        "integer": int,
        "boolean": bool,
    }
    if kind and not isinstance(value, checks[kind]):
        return [*found, f"{at}: not {kind}"]
    if isinstance(value, dict):
        found += [f"{at}.{k}: missing" for k in schema.get("required", ()) if k not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                found += violations(value[key], sub, root, f"{at}.{key}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{at}: fewer than minItems")
        for i, item in enumerate(value):
            found += violations(item, schema.get("items", {}), root, f"{at}[{i}]")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):
        found.append(f"{at}: shorter than minLength")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        found.append(f"{at}: out of range")
    return found


def spans_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    spans = [s for c in data["claims"] for s in c["evidence_spans"]]
    spans += [s for j in data["jargon"] for s in j["evidence_spans"]]
    spans += [m for p in data["people"] for m in p["mentions"]]
    return spans + [s for m in data["mental_models"] for s in m["evidence_spans"]]


class TestSchemaInstances:
    def test_miner_schema_instances_are_valid_and_quote_the_segment(self) -> None:
        """For many seeds: valid under the schema, quotes are real substrings of the text."""
        for seed in range(40):
            data = json.loads(json_reply(seed, PROMPT, MINER_SCHEMA))
            assert violations(data, MINER_SCHEMA, MINER_SCHEMA) == []
            for span in spans_of(data):
                assert span["quote"] in SEGMENT_TEXT
                assert (
                    span["segment_id"],
                    span["t0"],
                    span["t1"],
                ) == ("seg_0003", "12:04", "12:19")

    def test_same_seed_same_answer(self) -> None:
        """Generation is deterministic in seed and prompt, and varies with the seed."""
        assert json_reply(1, PROMPT, MINER_SCHEMA) == json_reply(1, PROMPT, MINER_SCHEMA)
        assert len({json_reply(s, PROMPT, MINER_SCHEMA) for s in range(5)}) > 1

    def test_json_mode_follows_an_example_in_the_prompt(self) -> None:
        """With format "json", an example object in the prompt gives the shape."""
        example = {"claims": [{"claim_text": "Shipping daily lowers risk.", "stance": "asserts"}]}
        prompt = "Example output:\n" + json.dumps(example) + "\n" + PROMPT
        data = json.loads(json_reply(3, prompt, "json"))
        assert list(data) == ["claims"]
        assert {"claim_text", "stance"} == set(data["claims"][0])
        assert data["claims"][0]["stance"] == "asserts"

    def test_source_is_the_segment_text(self) -> None:
        """The segment object is found in the prompt; its fields are available."""
        source = find_source(PROMPT)
        assert source.text == SEGMENT_TEXT
        assert source.fields["segment_id"] == "seg_0003"

    async def test_openai_json_schema_response_format(self, simulator: SimulatorFactory) -> None:
        """/v1 response_format json_schema gives schema-valid content."""
        sim = await simulator()
        body = {
            "model": "qwen2.5:7b-instruct",
            "messages": [{"role": "user", "content": PROMPT}],
            "response_format": {"type": "json_schema", "json_schema": {"schema": MINER_SCHEMA}},
        }
        async with aiohttp.ClientSession() as session:
            status, text = await post_json(session, sim, "/v1/chat/completions", body)
        reply = json.loads(text)
        assert (status, reply["choices"][0]["finish_reason"]) == (200, "stop")
        data = json.loads(reply["choices"][0]["message"]["content"])
        assert violations(data, MINER_SCHEMA, MINER_SCHEMA) == []

    async def test_num_predict_cuts_json(self, simulator: SimulatorFactory) -> None:
        """A num_predict below the JSON's length cuts it, with done_reason length."""
        sim = await simulator()
        body = {
            "model": "llama3.2",
            "messages": [{"role": "user", "content": PROMPT}],
            "format": MINER_SCHEMA,
            "stream": False,
            "options": {"num_predict": 10},
        }
        async with aiohttp.ClientSession() as session:
            _, text = await post_json(session, sim, "/api/chat", body)
        reply = json.loads(text)
        assert (
            reply["done_reason"],
            reply["eval_count"],
            len(reply["message"]["content"]),
        ) == ("length", 10, 40)
