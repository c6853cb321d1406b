"""Tables, chart and targets of scenario 1 (overhead), from its measured plan."""

from __future__ import annotations

import math
from typing import Any

from bench.chart import BarChart
from bench.contenders import Skipped
from bench.figures import fmt_ms
from bench.overhead_floor import floor_headline, floor_table, floor_targets
from bench.overhead_plan import Plan
from bench.report import Section, markdown_table

__all__ = ["WITH_DASHBOARDS", "render"]

WITH_DASHBOARDS = "lanes serve + 4 dashboards"
_ORDER = ("direct", "lanes serve", WITH_DASHBOARDS, "floor", "nginx", "LiteLLM")
_PROTOCOLS = {"native": "native `/api/generate`", "v1": "OpenAI `/v1/chat/completions`"}


def _names(plan: Plan) -> list[str]:
    found = {name for runs in plan.samples.values() for name in runs}
    return [n for n in _ORDER if n in found]


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count else "—"


def _us(seconds: float) -> str:
    return "—" if math.isnan(seconds) else f"{seconds * 1e6:.1f} µs"


def _tiny_table(plan: Plan, protocol: str, peak_rss: dict[str, int]) -> list[str]:
    labels = [f"{protocol} tiny c={c}" for c in plan.concurrencies]
    top = labels[-1]
    header = ["contender"]
    header += [f"added p50 c={c}" for c in plan.concurrencies]
    header += [f"added p99 c={c}" for c in plan.concurrencies]
    header += [f"req/s c={plan.concurrencies[-1]}", "CPU s / 1,000 req", "peak RSS"]
    rows = []
    for name in _names(plan):
        if name not in plan.samples.get(top, {}):
            continue
        if name == "direct":
            row = ["direct (absolute p50 / p99)"]
            row += [fmt_ms(plan.mid(label, name, "p50")) for label in labels]
            row += [fmt_ms(plan.mid(label, name, "p99")) for label in labels]
            row += [f"{plan.mid(top, name, 'rps'):.0f}", "—", "—"]
        else:
            row = [name]
            row += [fmt_ms(plan.added(label, name, "p50")) for label in labels]
            row += [fmt_ms(plan.added(label, name, "p99")) for label in labels]
            cpu = plan.cpu_per_request(name, protocol, False) * 1000
            row += [f"{plan.mid(top, name, 'rps'):.0f}", f"{cpu:.2f}", _mb(peak_rss.get(name, 0))]
        rows.append(row)
    return markdown_table(header, rows)


def _stream_table(plan: Plan) -> list[str]:
    header = [
        "contender",
        "protocol",
        "p50 whole stream",
        "added p50",
        "added TTFB p50",
        "added relay p50",
        "added relay per chunk",
        "CPU per chunk",
        "chunks / request",
    ]
    rows = []
    for label, runs in plan.samples.items():
        if " stream " not in label:
            continue
        protocol = label.split()[0]
        for name in _names(plan):
            if name not in runs:
                continue
            per_req = plan.mid(label, name, "chunks") / max(1.0, plan.mid(label, name, "requests"))
            added = plan.added(label, name, "p50")
            relay = plan.added(label, name, "relay_p50")
            net_cpu = plan.cpu_per_request(name, protocol, True) - plan.cpu_per_request(
                name, protocol, False
            )
            direct = name == "direct"
            rows.append(
                [
                    name,
                    protocol,
                    fmt_ms(plan.mid(label, name, "p50")),
                    "—" if direct else fmt_ms(added),
                    "—" if direct else fmt_ms(plan.added(label, name, "ttfb_p50")),
                    "—" if direct else fmt_ms(relay),
                    "—" if direct else _us(relay / per_req if per_req else math.nan),
                    "—" if direct else _us(net_cpu / per_req if per_req else math.nan),
                    f"{per_req:.0f}",
                ]
            )
    return markdown_table(header, rows)


def render(
    section: Section,
    plan: Plan,
    skipped: list[Skipped],
    peak_rss: dict[str, int],
    feed_events: int = 0,
) -> None:
    """Fill `section` with the overhead tables, chart, targets and raw data."""
    top = plan.concurrencies[-1]
    body = [
        f"Tiny requests ask for 1 token from a simulator doing no work; streams ask for "
        f"{plan.stream_chunks} tokens at 200 tokens/s, so each chunk is written on its own. "
        f"Each cell ran {plan.rounds} round(s), contenders alternating in rotated order; figures "
        "are medians over rounds of the per-round p50/p99, and *added* is the contender's "
        "figure minus direct's in the same round. Every process shares the same cores. "
        f"*{WITH_DASHBOARDS}* is a second `lanes serve` with 4 readers of its `/stats/stream` "
        "connected throughout (aiohttp clients in a process of their own, taking every event "
        "as 4 open dashboard pages would; they received "
        f"{feed_events:,} `stats` events in all), next to the figure without any.",
        "",
    ]
    measured = [p for p in _PROTOCOLS if f"{p} tiny c={top}" in plan.samples]
    for protocol in measured:
        title = _PROTOCOLS[protocol]
        body += [f"**Tiny requests, {title}** (added latency vs direct)", ""]
        body += [*_tiny_table(plan, protocol, peak_rss), ""]
    body += [
        f"**Streams of {plan.stream_chunks} chunks, {plan.stream_concurrency} concurrent.** "
        "The streams start together, so *added TTFB* is mostly the proxy's admission work for "
        "the others that arrived in the same millisecond (CPU per request, above); *relay* is "
        "a stream's time from its first byte to its last, the relaying of its chunks, and "
        "*added relay per chunk* that figure's added p50 divided by the chunks. *CPU per chunk* "
        "is the proxy's CPU per streamed request less its CPU per tiny request, per chunk.",
        "",
    ]
    body += _stream_table(plan)
    body += [
        "",
        "**Against the floor, in the same rounds.** The floor is bench/floor.py, a bare aiohttp "
        "pass-through on uvloop (streaming, no queue, no statistics): what any aiohttp proxy "
        "costs before it does anything of its own. Each figure is the contender's over the "
        "floor's (CPU per request over every tiny cell; added latency as above); added p99 "
        "and the stream's added p50 are the contender's own.",
        "",
    ]
    body += floor_table(plan, [n for n in _names(plan) if n not in ("direct", "floor")])
    errors = sum(s.errors for runs in plan.samples.values() for by in runs.values() for s in by)
    body += ["", f"Failed requests over the whole scenario: {errors}."]
    if skipped:
        body += ["", "**Skipped contenders:**", ""]
        body += [f"- {s.name}: {s.reason}" for s in skipped]
    section.body = body
    names = [n for n in _names(plan) if n != "direct"]
    chart_protocol = "v1" if "v1" in measured else "native"
    section.charts = [
        (
            "overhead-added-p50.png",
            BarChart(
                f"Added latency p50 vs direct, tiny {chart_protocol} requests",
                "ms",
                [f"c={c}" for c in plan.concurrencies],
                [
                    (
                        n,
                        [
                            plan.added(f"{chart_protocol} tiny c={c}", n, "p50") * 1000
                            for c in plan.concurrencies
                        ],
                    )
                    for n in names
                ],
            ),
        )
    ]
    section.headline = _headline(plan, names, peak_rss)
    section.targets = floor_targets(plan)
    data: dict[str, Any] = {
        label: {name: [vars(s) for s in by] for name, by in runs.items()}
        for label, runs in plan.samples.items()
    }
    section.data = {
        "samples": data,
        "peak_rss": peak_rss,
        "skipped": {s.name: s.reason for s in skipped},
    }


def _headline(plan: Plan, names: list[str], peak_rss: dict[str, int]) -> list[str]:
    first, top = plan.concurrencies[0], plan.concurrencies[-1]
    lines = []
    for protocol in ("native", "v1"):
        label = f"{protocol} tiny c={first}"
        here = [n for n in names if n in plan.samples.get(label, {})]
        if here:
            added = ", ".join(f"{n} {fmt_ms(plan.added(label, n, 'p50'))}" for n in here)
            lines.append(f"Overhead, tiny {protocol} requests one at a time: added p50 {added}.")
    label = f"native tiny c={top}"
    watched = [
        f"c={c}: {fmt_ms(plan.added(f'native tiny c={c}', WITH_DASHBOARDS, 'p50'))} "
        f"(none open: {fmt_ms(plan.added(f'native tiny c={c}', 'lanes serve', 'p50'))})"
        for c in plan.concurrencies
        if WITH_DASHBOARDS in plan.samples.get(f"native tiny c={c}", {})
    ]
    if watched:
        lines.append(
            "Added p50 of lanes serve with 4 dashboards open, tiny native requests: "
            + "; ".join(watched)
            + "."
        )
    if "lanes serve" in plan.samples.get(label, {}):
        cpu = plan.cpu_per_request("lanes serve", "native", False) * 1000
        lines.append(
            f"lanes serve: {plan.mid(label, 'lanes serve', 'rps'):.0f} req/s at {top} concurrent "
            f"(direct {plan.mid(label, 'direct', 'rps'):.0f}), {cpu:.2f} CPU s per 1,000 "
            f"requests, peak RSS {_mb(peak_rss.get('lanes serve', 0))}."
        )
    against = floor_headline(plan)
    if against:
        lines.append(against)
    return lines
