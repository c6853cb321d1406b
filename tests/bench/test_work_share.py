"""Scenario 5's figures and section (pure): served tokens, shares, waits, tables and text."""

from __future__ import annotations

import math
from typing import Any

from bench.report import Section
from bench.work_share_figures import ClientRun, Variant, VariantRun, client_run, find_run
from bench.work_share_report import render


def _result(rows: list[tuple[float, float, int, int, int]]) -> dict[str, Any]:
    """A load-generator result from (start, latency, prompt tokens, output tokens, wait ms)."""
    return {
        "starts": [r[0] for r in rows],
        "latencies": [r[1] for r in rows],
        "metrics": [
            {"prompt_eval_count": float(r[2]), "eval_count": float(r[3]), "eval_duration": r[1]}
            for r in rows
        ],
        "headers": [{"X-Lanes-Queue-Ms": str(r[4])} for r in rows],
    }


def _client(name: str, served: float, requests: int = 1) -> ClientRun:
    return ClientRun(name, requests, 0, int(served), 0, served, 0, *([0.1] * 5))


class TestClientRun:
    def test_served_tokens_weigh_prompt_and_output(self) -> None:
        """Served tokens are w_in x the prompt tokens plus w_out x the output tokens."""
        result = _result([(0.0, 1.0, 8000, 400, 0), (1.0, 1.0, 8000, 400, 0)])
        figures = client_run("editor", result, until=10.0, costs=(1.0, 2.0), aging_s=1.0)
        assert (
            figures.requests,
            figures.prompt_tokens,
            figures.output_tokens,
            figures.served,
        ) == (2, 16_000, 800, 17_600.0)

    def test_requests_ending_after_the_window_are_cut(self) -> None:
        """A request that ended after `until` counts as cut, not as served."""
        result = _result([(0.0, 1.0, 200, 100, 0), (1.5, 1.0, 200, 100, 0)])
        figures = client_run("chat", result, until=2.0, costs=(1.0, 2.0), aging_s=1.0)
        assert (figures.requests, figures.cut, figures.served) == (1, 1, 400.0)

    def test_waits_come_from_the_queue_header(self) -> None:
        """Waits are X-Lanes-Queue-Ms in seconds; those of aging_s or more count as aged."""
        rows = [(float(i), 0.5, 200, 100, ms) for i, ms in enumerate((0, 100, 200, 300, 400))]
        figures = client_run("chat", _result(rows), until=10.0, costs=(1.0, 2.0), aging_s=0.3)
        assert (figures.wait_p50_s, figures.aged) == (0.2, 2)


class TestVariant:
    def test_flags_compress_aging_and_pass_weights(self) -> None:
        """`lanes serve` gets the policy, aging divided by the time scale, and each weight."""
        variant = Variant("tokens", 30.0, (("chat", 2.0),))
        expected = ["--fairness=tokens", "--aging-s=1.5", "--client-weight=chat=2"]
        assert expected == variant.flags(20.0)

    def test_share_is_of_all_served_tokens(self) -> None:
        """A client's share is its served tokens over both clients' served tokens."""
        run = VariantRun(Variant("tokens", 30.0))
        run.clients = {"editor": _client("editor", 300.0), "chat": _client("chat", 100.0)}
        assert run.share("editor") == 0.75

    def test_share_of_nothing_served_is_nan(self) -> None:
        """With no served tokens at all, shares are undefined, not zero."""
        run = VariantRun(Variant("tokens", 30.0))
        run.clients = {"editor": _client("editor", 0.0), "chat": _client("chat", 0.0)}
        assert math.isnan(run.share("chat"))

    def test_find_run_ignores_weighted_runs(self) -> None:
        """The unweighted run with the policy, aging and lanes asked for is found."""
        plain = VariantRun(Variant("tokens", 30.0))
        weighted = VariantRun(Variant("tokens", 30.0, (("chat", 2.0),)))
        assert plain is find_run([weighted, plain], "tokens", 30.0, 1)


class TestRender:
    @staticmethod
    def _runs() -> list[VariantRun]:
        runs = []
        for fairness, editor, chat in (("requests", 22.0, 1.0), ("tokens", 1.0, 1.0)):
            run = VariantRun(Variant(fairness, 3600.0))
            run.clients = {"editor": _client("editor", editor), "chat": _client("chat", chat)}
            runs.append(run)
        return runs

    def test_side_by_side_table_has_a_column_per_run(self) -> None:
        """The first table's header names every run, after the row-label column."""
        section = Section("work_share", "5. Fair share by work")
        render(section, self._runs(), ["intro"], concurrency=3)
        header = next(line for line in section.body if line.startswith("|  |"))
        expected = "|  | `requests · 1 lane · aging 3600 s` | `tokens · 1 lane · aging 3600 s` |"
        assert expected == header

    def test_share_ratios_are_reported(self) -> None:
        """The ratio row gives editor share / chat share for each run."""
        section = Section("work_share", "5. Fair share by work")
        render(section, self._runs(), ["intro"], concurrency=3)
        row = next(line for line in section.body if line.startswith("| editor share / chat"))
        assert row == "| editor share / chat share | 22.00× | 1.00× |"

    def test_headline_compares_both_policies(self) -> None:
        """The headline gives the editor's multiple of the chat's share under each policy."""
        section = Section("work_share", "5. Fair share by work")
        render(section, self._runs(), ["intro"], concurrency=3)
        assert len(section.headline) == 1
        assert "22.00× the chat's served tokens by requests, 1.00× by tokens" in section.headline[0]
