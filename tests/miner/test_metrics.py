"""Ollama's metrics, truncation detection and the run summary."""

from __future__ import annotations

from miner.metrics import CallMetrics, from_native, from_openai, looks_truncated
from miner.outcome import total_metrics
from miner.summary import RunSummary, VerdictReport, lane_report, render_summary, verdict_report


class TestMetrics:
    def test_native_fields_and_omitted_zeros(self) -> None:
        """Every native metric is read; omitted ones stay None."""
        m = from_native({"prompt_eval_count": 10, "eval_count": 5, "done_reason": "length"})
        assert (m.prompt_eval_count, m.eval_count, m.eval_duration, m.length_stop) == (
            10, 5, None, True
        )  # fmt: skip

    def test_openai_usage(self) -> None:
        """/v1 usage maps to the token counts; finish_reason to done_reason."""
        m = from_openai({"choices": [{"finish_reason": "stop"}], "usage": {"prompt_tokens": 3}})
        assert (m.prompt_eval_count, m.eval_count, m.done_reason) == (3, None, "stop")

    def test_truncation_at_ctx_or_half(self) -> None:
        """At num_ctx (old Ollama) or ~num_ctx/2 below the estimate (0.30+) means truncated."""
        at = CallMetrics(prompt_eval_count=4096)
        half = CallMetrics(prompt_eval_count=2050)
        assert looks_truncated(at, num_ctx=4096, estimated_prompt=5000)
        assert looks_truncated(half, num_ctx=4096, estimated_prompt=6000)
        assert not looks_truncated(half, num_ctx=4096, estimated_prompt=2100)
        assert not looks_truncated(CallMetrics(), num_ctx=4096, estimated_prompt=9000)

    def test_totals(self) -> None:
        """Metrics sum over calls; done_reason is the last call's."""
        total = total_metrics(
            [CallMetrics(eval_count=2, done_reason="length"), CallMetrics(eval_count=3)]
        )
        assert (total.eval_count, total.prompt_eval_count, total.done_reason) == (5, None, None)


class TestSummary:
    def test_lane_report_reads_stats_defensively(self) -> None:
        """Known keys are read, deltas taken, odd shapes give None instead of errors."""
        before = {"counters": {"admitted": 10, "rejected": 1}}
        after = {
            "lanes": {"configured": 4},
            "utilization": {"busy_ratio_1m": 0.5, "busy_ratio_5m": "x"},
            "counters": {"admitted": 35, "rejected": 4},
        }
        report = lane_report(before, after)
        assert report is not None
        assert (report.configured, report.busy_ratio_1m, report.busy_ratio_5m) == (4, 0.5, None)
        assert (report.admitted, report.rejected) == (25, 3)
        assert lane_report(None, None) is None
        assert lane_report(None, {"lanes": []}) is not None

    def test_render_lines(self) -> None:
        """The summary names every count, rate and flag."""
        text = render_summary(
            RunSummary(segments=4, ok=2, repaired=1, fallback=0, failed=1, wall_s=2.0,
                       output_tokens=100, decode_s=0.5, truncated=1, length_stops=2)
        )  # fmt: skip
        assert "4 mined: 2 ok, 1 repaired, 0 fallback, 1 failed" in text
        assert "2.00 seg/s" in text
        assert "50 tok/s aggregate, 200 tok/s per call" in text
        assert "1 prompts at num_ctx, 2 replies stopped at num_predict" in text

    def test_verdict_report_reads_the_proxys_verdict(self) -> None:
        """The verdict and the secondary kinds are read from /stats; odd shapes give None."""
        verdict = {"kind": "ollama_bound", "explanation": "Full.", "fix": "Less.", "numbers": {}}
        after = {"verdict": verdict, "secondary": [{"kind": "prefill_bound"}, "odd"]}
        report = verdict_report(after)
        assert report == VerdictReport("ollama_bound", "Full.", "Less.", ("prefill_bound",))
        assert verdict_report({"verdict": {"kind": 3}}) is None
        assert verdict_report(None) is None

    def test_the_summary_ends_with_the_verdict(self) -> None:
        """The last lines are the proxy's verdict, its fix and the other kinds that hold."""
        verdict = VerdictReport("client_bound", "Few in flight.", "More workers.", ("idle",))
        text = render_summary(RunSummary(segments=1, ok=1, wall_s=1.0, verdict=verdict))
        assert text.splitlines()[-3:] == [
            "verdict    client_bound: Few in flight.",
            "fix        More workers.",
            "also       idle",
        ]

    def test_an_unread_verdict_is_one_line(self) -> None:
        """When the proxy's /stats could not be read, the summary ends with one line saying so."""
        summary = RunSummary(segments=1, ok=1, wall_s=1.0, stats_url="http://127.0.0.1:9/stats")
        last = render_summary(summary).splitlines()[-1]
        assert last == "verdict    unknown: no ollama-lanes statistics at http://127.0.0.1:9/stats"
