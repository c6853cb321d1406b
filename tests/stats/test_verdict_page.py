"""docs/verdict.md stays true: the rules in their order, and a real example of every kind."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from proxy.stats.schema import VerdictView
from proxy.stats.verdict import KINDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "verdict.md"


def _examples() -> dict[str, dict[str, Any]]:
    """Each kind's heading, with the JSON block under it."""
    text = PAGE.read_text(encoding="utf-8")
    found = re.findall(r"^## `(\w+)`\n.*?```json\n(.*?)```", text, flags=re.S | re.M)
    return {kind: json.loads(body) for kind, body in found}


class TestVerdictPage:
    def test_every_kind_has_a_worked_example_of_that_kind(self) -> None:
        """Each of the eight kinds has a section whose example is a verdict of that kind."""
        examples = _examples()
        assert sorted(examples) == sorted(KINDS)
        for kind, doc in examples.items():
            assert VerdictView.model_validate(doc["verdict"]).kind == kind
            assert [VerdictView.model_validate(v).kind for v in doc["secondary"]] == [
                k for k in KINDS if k in {v["kind"] for v in doc["secondary"]}
            ]

    def test_the_rules_table_lists_the_kinds_in_their_order(self) -> None:
        """The table of rules names every kind once, in the order the verdict tries them."""
        text = PAGE.read_text(encoding="utf-8")
        assert re.findall(r"^\| `(\w+)` \|", text, flags=re.M) == list(KINDS)
