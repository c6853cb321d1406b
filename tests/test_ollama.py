"""Pure Ollama knowledge: its default NUM_PARALLEL by version."""

from __future__ import annotations

import pytest

from proxy.ollama import default_num_parallel


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
