"""Parsing, validation and repair of replies (contract §4 and §5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from miner.repair import ReplyError, extract, parse_reply, repair
from miner.schema import MinerOutput

SPAN = {"segment_id": "seg_1", "quote": "the quote", "t0": "00:01", "t1": "00:02"}
CLAIM = {
    "claim_text": "Small deploys lower release risk.",
    "claim_type": "causal",
    "domain": "software",
    "stance": "asserts",
    "evidence_spans": [SPAN],
}
VALID = {
    "claims": [CLAIM],
    "jargon": [{"term": "canary", "definition": "d", "domain": "ops", "evidence_spans": [SPAN]}],
    "people": [
        {
            "name": "Fowler",
            "normalized_name": "Martin Fowler",
            "entity_type": "person",
            "mentions": [{**SPAN, "surface_form": "Fowler"}],
        }
    ],
    "mental_models": [{"name": "Conway", "definition": "d", "evidence_spans": [SPAN]}],
}


def _doc(**parts: Any) -> str:
    return json.dumps({"claims": [], "jargon": [], "people": [], "mental_models": []} | parts)


class TestParseReply:
    def test_plain_json(self) -> None:
        """A JSON object parses as is."""
        assert parse_reply('{"a": 1}') == {"a": 1}

    def test_object_inside_prose(self) -> None:
        """Prose around the object is stripped with the greedy `{...}` rule."""
        assert parse_reply('Sure! {"a": {"b": 2}} Hope it helps.') == {"a": {"b": 2}}

    def test_list_gives_first_element(self) -> None:
        """A top-level list is replaced by its first element."""
        assert parse_reply('[{"a": 1}, {"a": 2}]') == {"a": 1}

    @pytest.mark.parametrize("text", ["", "no json here", '{"a": ', "[]", "42", '"s"'])
    def test_not_an_object(self, text: str) -> None:
        """Anything that is not a JSON object is a ReplyError."""
        with pytest.raises(ReplyError):
            parse_reply(text)


class TestExtract:
    def test_valid_reply_is_ok(self) -> None:
        """A valid reply needs no repair and keeps every item."""
        result = extract(json.dumps(VALID), "seg_1")
        assert not result.repaired
        assert result.count == 4
        assert result.items["people"][0]["confidence"] == 0.8

    def test_empty_arrays_are_a_valid_answer(self) -> None:
        """A segment with nothing in it validates without repair."""
        result = extract(_doc(), "seg_1")
        assert (result.repaired, result.count) == (False, 0)

    def test_enum_maps_and_fallbacks(self) -> None:
        """Mapped enum values are translated; unknown values get the fallback."""
        claims = [
            {**CLAIM, "claim_type": "predictive", "stance": "supports"},
            {**CLAIM, "claim_type": "weird", "stance": "weird"},
        ]
        result = extract(_doc(claims=claims), "seg_1")
        assert result.repaired
        assert [(c["claim_type"], c["stance"]) for c in result.items["claims"]] == [
            ("forecast", "asserts"),
            ("factual", "neutral"),
        ]

    def test_defaults_filled(self) -> None:
        """Missing domain, normalized_name, entity_type, span segment_id get defaults."""
        span = {k: v for k, v in SPAN.items() if k != "segment_id"}
        person = {"name": "Ada", "mentions": [{**span, "surface_form": "Ada"}]}
        claim = {k: v for k, v in CLAIM.items() if k != "domain"} | {"evidence_spans": [span]}
        result = extract(_doc(claims=[claim], people=[person]), "seg_9")
        assert result.items["claims"][0]["domain"] == "general"
        assert result.items["claims"][0]["evidence_spans"][0]["segment_id"] == "seg_9"
        assert (
            result.items["people"][0]["normalized_name"],
            result.items["people"][0]["entity_type"],
        ) == ("Ada", "person")

    def test_flat_shape_migrates(self) -> None:
        """The old flat shape becomes nested evidence; numeric stamps become strings."""
        doc = _doc(
            claims=[
                {
                    **{k: CLAIM[k] for k in ("claim_text", "claim_type", "stance")},
                    "evidence_quote": "q",
                    "timestamp": 12.5,
                }
            ],
            people=[{"name": "Ada", "context_quote": "said Ada"}],
            mental_models=[{"name": "M", "description": "desc", "context_quote": "q"}],
        )
        result = extract(doc, "seg_2")
        span = result.items["claims"][0]["evidence_spans"][0]
        assert (
            span["quote"],
            span["t0"],
            span["segment_id"],
            span["context_type"],
        ) == ("q", "12.5", "seg_2", "exact")
        assert "evidence_quote" not in result.items["claims"][0]
        assert result.items["people"][0]["mentions"][0]["quote"] == "said Ada"
        assert result.items["mental_models"][0]["definition"] == "desc"

    def test_invalid_item_dropped_not_segment(self) -> None:
        """One bad item is dropped with a note; the good ones are kept."""
        bad = {**CLAIM, "claim_text": "short"}
        result = extract(_doc(claims=[CLAIM, bad]), "seg_1")
        assert len(result.items["claims"]) == 1
        assert (result.notes) == [
            "dropped claims[1]: claim_text: String should have at least 10 characters"
        ]

    def test_missing_claim_type_is_not_invented(self) -> None:
        """A claim without claim_type is dropped, not filled in."""
        claim = {k: v for k, v in CLAIM.items() if k != "claim_type"}
        result = extract(_doc(claims=[claim, CLAIM]), "seg_1")
        assert len(result.items["claims"]) == 1

    def test_all_items_invalid_is_a_failure(self) -> None:
        """If every offered item is invalid the reply fails; it never becomes an empty result."""
        with pytest.raises(ReplyError, match="all 2 items invalid"):
            extract(_doc(claims=[{**CLAIM, "evidence_spans": []}, {"claim_text": 3}]), "s")

    def test_missing_arrays_become_empty(self) -> None:
        """Missing or non-list top-level arrays become []."""
        result = extract(json.dumps({"claims": [CLAIM], "jargon": "none"}), "seg_1")
        assert result.repaired
        assert (
            result.items["jargon"],
            result.items["people"],
            result.items["mental_models"],
        ) == ([], [], [])

    def test_repaired_output_validates(self) -> None:
        """Whatever extract keeps validates against the schema models."""
        result = extract(_doc(claims=[{**CLAIM, "stance": "asks"}]), "seg_1")
        MinerOutput.model_validate(result.items)

    def test_repair_does_not_touch_input(self) -> None:
        """repair works on a copy."""
        doc: dict[str, Any] = {"claims": [{**CLAIM, "stance": "x"}]}
        repair(doc, "s")
        assert doc["claims"][0]["stance"] == "x"
