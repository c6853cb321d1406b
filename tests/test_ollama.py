"""Pure Ollama knowledge: its default NUM_PARALLEL by version, and a prompt's length."""

from __future__ import annotations

import pytest

from proxy.ollama import default_num_parallel, prompt_chars


class TestDefaultNumParallel:
    @pytest.mark.parametrize(
        ("version", "expected"),
        [
            ("0.1.40", 1),
            ("0.2.0", None),
            ("0.6.7", None),
            ("0.9.6", None),
            ("0.10.0", 1),
            ("0.33.0-sim", 1),
            (None, 1),
        ],
    )
    def test_by_version(self, version: str | None, expected: int | None) -> None:
        """1 before v0.2 and from v0.10; automatic (unknown here) in between."""
        assert default_num_parallel(version) == expected


class TestPromptChars:
    def test_counts_every_prompt_field_and_no_other(self) -> None:
        """prompt, system and each message's content count (parts too); model and options not."""
        doc = {
            "model": "llama3.2",
            "prompt": "abcd",
            "system": "ef",
            "messages": [
                {"role": "user", "content": "ghi"},
                {"role": "user", "content": [{"type": "text", "text": "jk"}, {"type": "image"}]},
            ],
            "input": ["l", "mn"],
            "options": {"stop": ["zzzzzz"]},
        }
        assert prompt_chars(doc) == 4 + 2 + 3 + 2 + 3
