"""The miner output schema (contract §4): pydantic models and the JSON schema sent as `format`."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "FORMAT_SCHEMA",
    "KINDS",
    "Claim",
    "ClaimSpan",
    "Jargon",
    "MentalModel",
    "Mention",
    "MinerOutput",
    "Person",
    "Span",
]

ClaimType = Literal["factual", "causal", "normative", "forecast", "definition"]
Stance = Literal["asserts", "questions", "opposes", "neutral"]
ContextType = Literal["exact", "extended", "segment"]
EntityType = Literal["person", "organization"]


class _Item(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class Span(_Item):
    """Evidence for jargon and mental models."""

    segment_id: str
    quote: str
    t0: str
    t1: str
    context_text: str | None = None


class ClaimSpan(Span):
    """Evidence for a claim, with optional context."""

    context_t0: str | None = None
    context_t1: str | None = None
    context_type: ContextType = "exact"


class Mention(_Item):
    """Where a person or organization is mentioned."""

    segment_id: str
    surface_form: str
    quote: str
    t0: str
    t1: str


class Claim(_Item):
    """One claim made in the segment."""

    claim_text: str = Field(min_length=10)
    claim_type: ClaimType
    domain: str
    stance: Stance
    evidence_spans: list[ClaimSpan] = Field(min_length=1)


class Jargon(_Item):
    """A term of art, with its definition."""

    term: str
    definition: str
    domain: str
    evidence_spans: list[Span] = Field(min_length=1)


class Person(_Item):
    """A person or organization mentioned."""

    name: str
    normalized_name: str
    entity_type: EntityType
    role_or_description: str | None = None
    confidence: float = Field(0.8, ge=0, le=1)
    external_ids: dict[str, str] | None = None
    mentions: list[Mention] = Field(min_length=1)


class MentalModel(_Item):
    """A named way of thinking, with its definition."""

    name: str
    definition: str
    aliases: list[str] = Field(default_factory=list)
    evidence_spans: list[Span] = Field(min_length=1)


class MinerOutput(BaseModel):
    """The whole reply for one segment."""

    model_config = ConfigDict(extra="allow", strict=True)

    claims: list[Claim]
    jargon: list[Jargon]
    people: list[Person]
    mental_models: list[MentalModel]


# Top-level key -> item model, in output order.
KINDS: dict[str, type[_Item]] = {
    "claims": Claim,
    "jargon": Jargon,
    "people": Person,
    "mental_models": MentalModel,
}


def _obj(required: list[str], props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_S: dict[str, Any] = {"type": "string"}
_SPAN_KEYS = ["segment_id", "quote", "t0", "t1"]
_SPAN = _obj(_SPAN_KEYS, {k: _S for k in _SPAN_KEYS})
_CLAIM_SPAN = _obj(
    _SPAN_KEYS,
    {**{k: _S for k in _SPAN_KEYS}, "context_type": {"enum": ["exact", "extended", "segment"]}},
)
_MENTION_KEYS = ["segment_id", "surface_form", "quote", "t0", "t1"]

# Sent as Ollama's `format` (and /v1 json_schema). No `pattern` anywhere: Ollama fails
# with "unable to create sampling context" on regex patterns (contract §7).
FORMAT_SCHEMA: dict[str, Any] = _obj(
    ["claims", "jargon", "people", "mental_models"],
    {
        "claims": {
            "type": "array",
            "items": _obj(
                ["claim_text", "claim_type", "domain", "stance", "evidence_spans"],
                {
                    "claim_text": {"type": "string", "minLength": 10},
                    "claim_type": {"enum": list(get_args(ClaimType))},
                    "domain": _S,
                    "stance": {"enum": list(get_args(Stance))},
                    "evidence_spans": {"type": "array", "minItems": 1, "items": _CLAIM_SPAN},
                },
            ),
        },
        "jargon": {
            "type": "array",
            "items": _obj(
                ["term", "definition", "domain", "evidence_spans"],
                {
                    "term": _S,
                    "definition": _S,
                    "domain": _S,
                    "evidence_spans": {"type": "array", "minItems": 1, "items": _SPAN},
                },
            ),
        },
        "people": {
            "type": "array",
            "items": _obj(
                ["name", "normalized_name", "entity_type", "mentions"],
                {
                    "name": _S,
                    "normalized_name": _S,
                    "entity_type": {"enum": ["person", "organization"]},
                    "mentions": {
                        "type": "array",
                        "minItems": 1,
                        "items": _obj(_MENTION_KEYS, {k: _S for k in _MENTION_KEYS}),
                    },
                },
            ),
        },
        "mental_models": {
            "type": "array",
            "items": _obj(
                ["name", "definition", "evidence_spans"],
                {
                    "name": _S,
                    "definition": _S,
                    "evidence_spans": {"type": "array", "minItems": 1, "items": _SPAN},
                },
            ),
        },
    },
)
