"""Scenario 1 against the Python floor: every contender as ratios to bench/floor.py, measured in
the same run, and the targets of issue 16 they decide."""

from __future__ import annotations

import math

from bench.figures import fmt_ms
from bench.overhead_plan import Plan
from bench.report import Target, markdown_table

__all__ = ["FLOOR", "floor_headline", "floor_table", "floor_targets"]

FLOOR = "floor"
_PROTOCOLS = ("native", "v1")


def _div(a: float, b: float) -> float:
    return a / b if b > 0 and not math.isnan(a) else math.nan


def _x(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2f}×"


class _Figures:
    """One contender's figures over the floor's, per protocol, from one plan."""

    def __init__(self, plan: Plan, name: str, protocol: str) -> None:
        first, top = plan.concurrencies[0], plan.concurrencies[-1]
        one, many = f"{protocol} tiny c={first}", f"{protocol} tiny c={top}"
        stream = f"{protocol} stream c={plan.stream_concurrency}"
        self.cpu = _div(
            plan.cpu_per_request(name, protocol, False),
            plan.cpu_per_request(FLOOR, protocol, False),
        )
        self.p50 = _div(plan.added(one, name, "p50"), plan.added(one, FLOOR, "p50"))
        self.p99_s = plan.added(one, name, "p99")
        self.rps = _div(plan.mid(many, name, "rps"), plan.mid(many, FLOOR, "rps"))
        self.stream_s = plan.added(stream, name, "p50")
        self.relay_s = plan.added(stream, name, "relay_p50")


def _ran(plan: Plan, name: str, protocol: str, kind: str = "tiny") -> bool:
    """Both `name` and the floor ran `protocol` in the first cell of `kind` (tiny, stream)."""
    first = plan.concurrencies[0] if kind == "tiny" else plan.stream_concurrency
    runs = plan.samples.get(f"{protocol} {kind} c={first}", {})
    return name in runs and FLOOR in runs


def floor_table(plan: Plan, names: list[str]) -> list[str]:
    """Each contender's CPU per request, added p50 one at a time and throughput at the top
    concurrency as multiples of the floor's in the same rounds."""
    first, top = plan.concurrencies[0], plan.concurrencies[-1]
    header = ["contender", "protocol", "CPU / request", f"added p50 c={first}",
              f"added p99 c={first}", f"req/s c={top}", "stream added p50"]  # fmt: skip
    rows = []
    for name in names:
        for protocol in _PROTOCOLS:
            if not _ran(plan, name, protocol):
                continue
            f = _Figures(plan, name, protocol)
            rows.append([name, protocol, _x(f.cpu), _x(f.p50), fmt_ms(f.p99_s), _x(f.rps),
                         fmt_ms(f.stream_s)])  # fmt: skip
    return markdown_table(header, rows)


def _worst(values: list[float], *, high_is_bad: bool = True) -> float:
    found = [v for v in values if not math.isnan(v)]
    if not found:
        return math.nan
    return max(found) if high_is_bad else min(found)


def _check(value: float, ok: bool) -> bool | None:
    return None if math.isnan(value) else ok


def floor_targets(plan: Plan, name: str = "lanes serve") -> list[Target]:
    """Issue 16's targets for `name`, each at its worst over the protocols measured."""
    figures = [_Figures(plan, name, p) for p in _PROTOCOLS if _ran(plan, name, p)]
    streams = [_Figures(plan, name, p) for p in _PROTOCOLS if _ran(plan, name, p, "stream")]
    cpu = _worst([f.cpu for f in figures])
    p50 = _worst([f.p50 for f in figures])
    p99 = _worst([f.p99_s for f in figures])
    rps = _worst([f.rps for f in figures], high_is_bad=False)
    stream = _worst([f.stream_s for f in streams])
    relay = _worst([f.relay_s for f in streams])
    first, top = plan.concurrencies[0], plan.concurrencies[-1]
    one = "" if first == 1 else f"smoke run: c={first}"
    many = "" if top == 64 else f"smoke run: c={top}"
    chunks = plan.stream_chunks
    worst = "worst of native and v1"
    return [
        Target("CPU per request ≤ 1.3 × the floor's", f"{_x(cpu)} ({worst})",
               _check(cpu, cpu <= 1.3), issue=16),
        Target("added p50 one at a time ≤ 1.3 × the floor's", f"{_x(p50)} ({worst})",
               _check(p50, p50 <= 1.3), one, issue=16),
        Target("added p99 one at a time ≤ 2 ms", f"{fmt_ms(p99)} ({worst})",
               _check(p99, p99 <= 0.002), one, issue=16),
        Target("throughput at 64 concurrent ≥ 0.85 × the floor's", f"{_x(rps)} ({worst})",
               _check(rps, rps >= 0.85), many, issue=16),
        Target(f"streaming relay of {chunks} chunks ≤ 2 ms added (first to last byte, "
               f"{plan.stream_concurrency} streams at once)",
               f"{fmt_ms(relay)} ({worst}; whole stream {fmt_ms(stream)})",
               _check(relay, relay <= 0.002), issue=16),
    ]  # fmt: skip


def floor_headline(plan: Plan, name: str = "lanes serve") -> str | None:
    """One line: the contender's CPU per request and throughput as multiples of the floor's."""
    if not _ran(plan, name, "native"):
        return None
    f = _Figures(plan, name, "native")
    return (
        f"{name} against the Python floor (bare aiohttp pass-through, same run, native tiny "
        f"requests): {_x(f.cpu)} its CPU per request, {_x(f.p50)} its added p50 one at a "
        f"time, {_x(f.rps)} its throughput at {plan.concurrencies[-1]} concurrent."
    )
