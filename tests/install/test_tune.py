"""The pure parts of `lanes tune`: sweep plan, knee, Ollama-queue detection, and its text."""

from __future__ import annotations

import pytest

from proxy.install.tune import (
    StepResult,
    choose_knee,
    format_bytes,
    kv_memory_bytes,
    kv_report,
    ollama_queued_from,
    render_chart,
    render_report,
    render_table,
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

    def test_kv_report_one_line_per_lane_count(self) -> None:
        """Each lane count gets its KV size once, smallest first."""
        lines = kv_report(8192, 57344, (4, 2, 4))
        assert lines == [
            "KV cache at 2 lanes: 8192 ctx × 2 × 57344 B/token = 896.0 MiB.",
            "KV cache at 4 lanes: 8192 ctx × 4 × 57344 B/token = 1.8 GiB.",
        ]

    def test_kv_report_without_layer_counts(self) -> None:
        """Without bytes per token (or a context size) the size is unknown, and says why."""
        unknown = ["KV cache size: unknown (Ollama reports no layer and head counts)."]
        assert unknown == kv_report(8192, None, (2,))
        assert unknown == kv_report(0, 57344, (2,))


class TestReport:
    def test_recommends_the_knee_and_names_the_best(self) -> None:
        """The last line names the knee, the best throughput and where it was reached."""
        report = render_report([step(1, 40), step(2, 80), step(4, 82)], knee=2, max_lanes=4)
        assert report.splitlines()[-1] == (
            "Recommended lanes: 2 (best 82.0 tok/s at 4; 2 is the smallest count within 5% of it)."
        )
        assert "<- knee" in report

    def test_says_when_ollama_capped_the_sweep(self) -> None:
        """Slot waits inside Ollama from some step on are reported with how to lift the cap."""
        steps = [step(1, 40), step(2, 80), step(3, 80, wait_s=1.0)]
        report = render_report(steps, knee=2, max_lanes=3)
        assert "Requests waited inside Ollama from 3 at once: it ran at most 2 together" in report
        assert "set OLLAMA_NUM_PARALLEL=3 for the sweep" in report
