"""The lane map (pure): each model's lanes from NUM_PARALLEL and Ollama's one-lane rules."""

from __future__ import annotations

import pytest

from proxy.lanes.lanemap import (
    ONE_LANE_ARCHITECTURES,
    ModelLanes,
    Parallel,
    lanes_for,
    parse_num_parallel,
)

FOUR = Parallel(4, "ollama-env", "/proc/1/environ")


class TestLanesFor:
    def test_a_plain_model_gets_num_parallel(self) -> None:
        """A chat model runs NUM_PARALLEL at once, with the source NUM_PARALLEL came from."""
        got = lanes_for(FOUR, capabilities=("completion", "tools"), architecture="llama")
        assert got == ModelLanes(4, "ollama-env")

    def test_embedding_models_get_one(self) -> None:
        """Ollama runs embedding models with one slot whatever NUM_PARALLEL says."""
        got = lanes_for(FOUR, capabilities=("embedding",), architecture="bert")
        assert got == ModelLanes(1, "rule:embedding")

    @pytest.mark.parametrize("arch", sorted(ONE_LANE_ARCHITECTURES))
    def test_the_one_lane_architectures_get_one(self, arch: str) -> None:
        """Each architecture of sched.go's list runs with one slot, named in the source."""
        got = lanes_for(FOUR, capabilities=("completion",), architecture=arch.upper())
        assert got == ModelLanes(1, f"rule:architecture {arch}")

    def test_model_lanes_override_everything(self) -> None:
        """The model_lanes setting wins over the rules and NUM_PARALLEL: source config."""
        got = lanes_for(FOUR, capabilities=("embedding",), architecture=None, override=3)
        assert got == ModelLanes(3, "config")

    def test_unknown_facts_or_parallel_mean_one(self) -> None:
        """A model not looked up yet, or an unreadable NUM_PARALLEL, gets the safe 1."""
        assert lanes_for(FOUR, capabilities=None, architecture=None) == ModelLanes(1, "assumed")
        unknown = Parallel.unknown("no process listens on port 11434")
        got = lanes_for(unknown, capabilities=("completion",), architecture="llama")
        assert got == ModelLanes(1, "assumed")


class TestParseNumParallel:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [("4", 4), (" 8 ", 8), ('"2"', 2), ("0", 1), ("-3", 1), ("", 1), (None, 1), ("x", 1)],
    )
    def test_like_ollama(self, raw: str | None, expected: int) -> None:
        """Unset or junk is the version's default (1 here); 0 and negatives act as 1."""
        assert parse_num_parallel(raw, 1) == expected

    def test_an_unknown_default_stays_unknown(self) -> None:
        """Unset on a version with automatic parallelism: not known."""
        assert parse_num_parallel(None, None) is None
