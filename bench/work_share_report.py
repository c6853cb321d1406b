"""Scenario 5's section: both policies side by side, per-client figures, what they mean, chart."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bench.chart import BarChart
from bench.figures import fmt_ms, ratio
from bench.report import Section, markdown_table
from bench.work_share_figures import CLIENTS, VariantRun, find_run

__all__ = ["render"]

Cell = Callable[[VariantRun], str]


def _pct(value: float) -> str:
    return "—" if math.isnan(value) else f"{value * 100:.1f}%"


def _times(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}×"


def _share_ratio(run: VariantRun) -> float:
    return ratio(run.share("editor"), run.share("chat"))


def _waits(client: str) -> Cell:
    def cell(run: VariantRun) -> str:
        figures = run.clients[client]
        return f"{fmt_ms(figures.wait_p50_s, 0)} / {fmt_ms(figures.wait_p95_s, 0)}"

    return cell


def _aged(run: VariantRun) -> str:
    done = sum(c.requests for c in run.clients.values())
    return _pct(ratio(sum(c.aged for c in run.clients.values()), done))


def _side_by_side(runs: Sequence[VariantRun]) -> list[str]:
    def chat_vs_requests(run: VariantRun) -> str:
        base = find_run(runs, "requests", run.variant.aging_s, run.variant.lanes)
        if base is None:
            return "—"
        return _times(ratio(run.clients["chat"].wait_p95_s, base.clients["chat"].wait_p95_s))

    cells: list[tuple[str, Cell]] = [
        ("editor share of served tokens", lambda r: _pct(r.share("editor"))),
        ("chat share of served tokens", lambda r: _pct(r.share("chat"))),
        ("editor share / chat share", lambda r: _times(_share_ratio(r))),
        ("requests served, editor / chat",
         lambda r: f"{r.clients['editor'].requests} / {r.clients['chat'].requests}"),
        ("editor wait p50 / p95", _waits("editor")),
        ("chat wait p50 / p95", _waits("chat")),
        ("chat wait p95 ÷ `requests` run's (same lanes, aging)", chat_vs_requests),
        ("requests that waited ≥ aging_s", _aged),
    ]  # fmt: skip
    rows = [[name, *(cell(r) for r in runs)] for name, cell in cells]
    return markdown_table(["", *(f"`{r.variant.label}`" for r in runs)], rows)


def _per_client(runs: Sequence[VariantRun]) -> list[str]:
    header = ["run", "client", "requests", "prompt tokens", "output tokens", "served tokens",
              "share", "wait p50", "wait p95", "total p50", "total p95"]  # fmt: skip
    rows = [
        [f"`{run.variant.label}`", c.client, str(c.requests), f"{c.prompt_tokens:,}",
         f"{c.output_tokens:,}", f"{c.served:,.0f}", _pct(run.share(c.client)),
         fmt_ms(c.wait_p50_s, 0), fmt_ms(c.wait_p95_s, 0), fmt_ms(c.total_p50_s, 0),
         fmt_ms(c.total_p95_s, 0)]
        for run in runs
        for c in run.clients.values()
    ]  # fmt: skip
    return markdown_table(header, rows)


def _per_request(run: VariantRun, client: str) -> float:
    figures = run.clients[client]
    return ratio(figures.served, figures.requests)


def _policies(by_requests: VariantRun, by_tokens: VariantRun) -> str:
    cost = ratio(_per_request(by_tokens, "editor"), _per_request(by_tokens, "chat"))
    chats = ratio(by_tokens.clients["chat"].requests, by_tokens.clients["editor"].requests)
    return (
        f"By requests the clients take turns, so the editor, whose request is worth {cost:.0f} "
        f"chat requests in served tokens, gets {_pct(by_requests.share('editor'))} of them "
        f"({_times(_share_ratio(by_requests))} the chat's). By tokens, with aging out of the "
        f"way ({by_tokens.variant.aging_s:g} s), the turn goes to the client with less service: "
        f"{_pct(by_tokens.share('editor'))} / {_pct(by_tokens.share('chat'))} "
        f"({_times(_share_ratio(by_tokens))}). The chat's p95 wait goes from "
        f"{fmt_ms(by_requests.clients['chat'].wait_p95_s, 0)} to "
        f"{fmt_ms(by_tokens.clients['chat'].wait_p95_s, 0)}; the editor pays for it, its p95 "
        f"wait going from {fmt_ms(by_requests.clients['editor'].wait_p95_s, 0)} to "
        f"{fmt_ms(by_tokens.clients['editor'].wait_p95_s, 0)} ({chats:.0f} chat requests "
        "per editor request)."
    )


def _aging(by_requests: VariantRun, by_tokens: VariantRun) -> str:
    return (
        f"With the default aging ({by_tokens.variant.aging_s:g} s), {_aged(by_requests)} of the "
        f"requests run's requests and {_aged(by_tokens)} of the tokens run's waited aging_s or "
        "more. By requests, a request moves up a class once it has waited aging_s. By tokens, a "
        "class that keeps getting lanes does not age (only a class starved by the classes above "
        "it does), so the shares still come to "
        f"{_times(_share_ratio(by_tokens))} against {_times(_share_ratio(by_requests))} by "
        "requests."
    )


def _pair(
    runs: Sequence[VariantRun], aging_s: float, lanes: int
) -> tuple[VariantRun, VariantRun] | None:
    """The `requests` and `tokens` runs with this aging and lane count, if both ran."""
    by_requests = find_run(runs, "requests", aging_s, lanes)
    by_tokens = find_run(runs, "tokens", aging_s, lanes)
    return None if by_requests is None or by_tokens is None else (by_requests, by_tokens)


def _weighted(run: VariantRun) -> str:
    key, weight = run.variant.weights[0]
    other = next(c for c in CLIENTS if c != key)
    return (
        f"With `--client-weight {key}={weight:g}` the {key} gets "
        f"{_times(ratio(run.share(key), run.share(other)))} the {other}'s served tokens "
        f"({_pct(run.share(key))})."
    )


def _lifted(by_requests: VariantRun, by_tokens: VariantRun, concurrency: int) -> str:
    lanes = by_tokens.variant.lanes
    shares = (
        f"{_pct(by_tokens.share('editor'))} / {_pct(by_tokens.share('chat'))} "
        f"({_times(_share_ratio(by_tokens))}) by tokens against "
        f"{_times(_share_ratio(by_requests))} by requests"
    )
    if _share_ratio(by_tokens) <= 1.25:
        return f"On {lanes} lanes the shares hold as well: {shares}."
    return (
        f"On {lanes} lanes the chat, with {concurrency} requests for {lanes} lanes, often has "
        "a single request waiting: each time that one takes a lane and the chat's next request "
        "arrives, the chat joins the class afresh and is lifted to the editor's counter (rule "
        "4, idleness earns no credit; requests still running do not count), so it cannot bank "
        f"the turns it is owed: {shares}."
    )


def _meaning(runs: Sequence[VariantRun], concurrency: int) -> list[str]:
    """A few sentences per comparison the runs allow, each with its numbers."""
    if not runs:
        return []
    lanes = min(r.variant.lanes for r in runs)
    agings = sorted({r.variant.aging_s for r in runs})
    lines: list[str] = []
    if pair := _pair(runs, agings[-1], lanes):
        lines.append(_policies(*pair))
    if len(agings) > 1 and (pair := _pair(runs, agings[0], lanes)):
        lines.append(_aging(*pair))
    lines += [_weighted(r) for r in runs if r.variant.weights]
    for more in sorted({r.variant.lanes for r in runs if r.variant.lanes > lanes}):
        if pair := _pair(runs, agings[-1], more):
            lines.append(_lifted(pair[0], pair[1], concurrency))
    return [f"- {line}" for line in lines]


def _headline(runs: Sequence[VariantRun]) -> list[str]:
    lanes = min((r.variant.lanes for r in runs), default=1)
    aging_s = max((r.variant.aging_s for r in runs), default=0.0)
    by_requests = find_run(runs, "requests", aging_s, lanes)
    by_tokens = find_run(runs, "tokens", aging_s, lanes)
    if by_requests is None or by_tokens is None:
        return []
    return [
        "Fair share by work (an editor with 8,000-token prompts beside a chat client, one "
        f"class, {lanes} lane, aging {aging_s:g} s): the editor gets "
        f"{_times(_share_ratio(by_requests))} the chat's served tokens by requests, "
        f"{_times(_share_ratio(by_tokens))} by tokens; chat p95 wait "
        f"{fmt_ms(by_requests.clients['chat'].wait_p95_s, 0)} → "
        f"{fmt_ms(by_tokens.clients['chat'].wait_p95_s, 0)} (time-compressed)."
    ]


def render(
    section: Section, runs: Sequence[VariantRun], intro: Sequence[str], concurrency: int
) -> None:
    """Fill `section`: intro, side-by-side table, what it means, per-client table, chart;
    `concurrency` is each client's requests in flight."""
    section.body = [*intro, "", *_side_by_side(runs), "", *_meaning(runs, concurrency), ""]
    section.body += _per_client(runs)
    section.headline = _headline(runs)
    section.charts = [
        (
            "work-share.png",
            BarChart(
                "Share of served tokens, editor vs chat (%)",
                "%",
                [r.variant.short for r in runs],
                [(c, [r.share(c) * 100 for r in runs]) for c in CLIENTS],
            ),
        )
    ]
