"""The pure parts of `lanes tune`: sweep plan, knee, Ollama-queue detection, TOML edit, text."""

from __future__ import annotations

import tomllib

import pytest

from proxy.install.tune import (
    StepResult,
    choose_knee,
    format_bytes,
    kv_memory_bytes,
    ollama_queued_from,
    render_chart,
    render_table,
    set_toml_key,
    sweep_plan,
)


def step(lanes: int, tokens_per_s: float, wait_s: float = 0.0) -> StepResult:
    """A step of 10 one-second requests whose throughput is `tokens_per_s`."""
    return StepResult(
        lanes=lanes,
        wall_s=10.0,
        output_tokens=round(tokens_per_s * 10),
        latencies_s=[1.0 + wait_s] * 10,
        slot_waits_s=[wait_s] * 10,
    )


class TestSweepPlan:
    def test_default_ceiling(self) -> None:
        """1, 2, 3, 4, then steps of about 1.4× up to 16."""
        assert sweep_plan(16) == [1, 2, 3, 4, 6, 8, 12, 16]

    def test_ceiling_off_the_grid_is_included(self) -> None:
        """A ceiling between steps ends the plan."""
        assert sweep_plan(10) == [1, 2, 3, 4, 6, 8, 10]
        assert sweep_plan(1) == [1]

    def test_zero_is_refused(self) -> None:
        """At least one lane."""
        with pytest.raises(ValueError, match="at least 1"):
            sweep_plan(0)


class TestKnee:
    def test_smallest_within_five_percent_of_best(self) -> None:
        """96% of the best is close enough; the smallest such count wins."""
        steps = [step(1, 40), step(2, 70), step(3, 96), step(4, 100), step(6, 99)]
        assert choose_knee(steps) == 3

    def test_just_outside_the_tolerance(self) -> None:
        """94% of the best is not."""
        assert choose_knee([step(1, 50), step(2, 94), step(3, 100)]) == 3

    def test_flat_throughput_means_one_lane(self) -> None:
        """When concurrency buys nothing, one lane is the knee."""
        assert choose_knee([step(1, 100), step(2, 101), step(4, 102)]) == 1

    def test_no_completed_step_is_an_error(self) -> None:
        """A sweep where nothing finished has no knee."""
        with pytest.raises(ValueError, match="no step"):
            choose_knee([StepResult(lanes=1, wall_s=1.0, output_tokens=0, latencies_s=[])])


class TestOllamaQueue:
    def test_first_step_with_real_slot_waits(self) -> None:
        """Waits longer than a quarter of the service time mark Ollama's own queue."""
        steps = [step(2, 50, 0.001), step(3, 60, 0.01), step(4, 60, 0.5)]
        assert ollama_queued_from(steps) == 4

    def test_none_when_nothing_waited(self) -> None:
        """Templating noise of a few milliseconds is not a queue."""
        assert ollama_queued_from([step(1, 10, 0.002), step(2, 20, 0.003)]) is None


class TestSetTomlKey:
    def test_empty_file_gets_the_table(self) -> None:
        """No file yet: a [serve] table with the key."""
        assert tomllib.loads(set_toml_key("", "serve", "lanes", 3)) == {"serve": {"lanes": 3}}

    def test_existing_key_is_replaced_in_place(self) -> None:
        """Other keys, tables and comments stay as written."""
        text = '# mine\n[serve]\nlisten = "127.0.0.1:11435"\nlanes = 8\n\n[miner]\nworkers = 4\n'
        new = set_toml_key(text, "serve", "lanes", 3)
        assert new == text.replace("lanes = 8", "lanes = 3")

    def test_missing_key_is_added_to_the_table(self) -> None:
        """The key goes at the end of [serve], before the blank line and the next table."""
        new = set_toml_key('[serve]\nlisten = "x"\n\n[miner]\nworkers = 4\n', "serve", "lanes", 2)
        assert tomllib.loads(new) == {"serve": {"listen": "x", "lanes": 2}, "miner": {"workers": 4}}

    def test_missing_table_is_appended(self) -> None:
        """Other tables are left alone and [serve] follows them."""
        new = set_toml_key("[miner]\nworkers = 4\n", "serve", "lanes", 5)
        assert tomllib.loads(new) == {"miner": {"workers": 4}, "serve": {"lanes": 5}}

    def test_trailing_comment_is_kept(self) -> None:
        """`lanes install` marks its lines with a comment; the mark stays on the new value."""
        new = set_toml_key("[serve]\nlanes = 4  # lanes install\n", "serve", "lanes", 3)
        assert new == "[serve]\nlanes = 3  # lanes install\n"


class TestText:
    def test_table_marks_the_knee(self) -> None:
        """One row per step; the knee's row says so."""
        table = render_table([step(1, 40), step(2, 80)], knee=2)
        assert table.splitlines()[-1].endswith("<- knee")
        assert len(table.splitlines()) == 4

    def test_chart_bars_scale_with_throughput(self) -> None:
        """The best step gets the full width, half the throughput half of it."""
        lines = render_chart([step(1, 50), step(2, 100)], width=20).splitlines()
        assert lines[0].count("█") == 10
        assert lines[1].count("█") == 20

    def test_kv_memory(self) -> None:
        """num_ctx × lanes × bytes per token, shown in binary units."""
        size = kv_memory_bytes(8192, 4, 57344)
        assert size == 8192 * 4 * 57344
        assert format_bytes(size) == "1.8 GiB"
        assert format_bytes(512) == "512 B"
