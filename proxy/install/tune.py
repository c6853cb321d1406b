"""Pure parts of `lanes tune`: the sweep plan, the knee, KV memory, and the text it prints.

KV bytes per token come from `proxy.install.kv_cache`, shared with `lanes doctor`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "KNEE_TOLERANCE",
    "StepResult",
    "choose_knee",
    "format_bytes",
    "kv_memory_bytes",
    "kv_report",
    "ollama_queued_from",
    "parallel_advice",
    "render_chart",
    "render_report",
    "render_table",
    "sweep_plan",
]

KNEE_TOLERANCE = 0.05


def sweep_plan(max_lanes: int) -> list[int]:
    """Lane counts to try: 1, 2, 3, 4, 6, 8, 12, 16, 24, ... up to `max_lanes` (always included)."""
    if max_lanes < 1:
        raise ValueError("max_lanes must be at least 1")
    plan = [n for n in (1, 2, 3, 4) if n <= max_lanes]
    step = 6
    while step <= max_lanes:
        plan.append(step)
        step = step * 4 // 3 if step % 3 == 0 else step * 3 // 2
    if plan[-1] != max_lanes:
        plan.append(max_lanes)
    return plan


@dataclass(frozen=True)
class StepResult:
    """What one sweep step measured with `lanes` requests held at once."""

    lanes: int
    wall_s: float
    output_tokens: int
    latencies_s: Sequence[float]
    slot_waits_s: Sequence[float] = field(default_factory=tuple)
    errors: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies_s)

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def p95_s(self) -> float:
        return _percentile(self.latencies_s, 95)

    @property
    def service_s(self) -> float:
        """Median latency less the median time spent waiting for a slot inside Ollama."""
        return _percentile(self.latencies_s, 50) - _percentile(self.slot_waits_s or [0.0], 50)


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def choose_knee(steps: Sequence[StepResult], tolerance: float = KNEE_TOLERANCE) -> int:
    """The smallest lane count whose output tokens/s is within `tolerance` of the best."""
    usable = [s for s in steps if s.requests and s.tokens_per_s > 0]
    if not usable:
        raise ValueError("no step completed a request")
    best = max(s.tokens_per_s for s in usable)
    return min(s.lanes for s in usable if s.tokens_per_s >= (1 - tolerance) * best)


def ollama_queued_from(steps: Sequence[StepResult], share: float = 0.25) -> int | None:
    """The first lane count at which requests waited inside Ollama for a slot, if any.

    Ollama reports no slot wait, but `total - load - prompt_eval - eval` is the wait for
    a slot plus templating; when one request in ten waited more than `share` of the
    service time, Ollama ran fewer requests at once than were sent: OLLAMA_NUM_PARALLEL
    (or the model's own limit) is below this step.
    """
    for step in sorted(steps, key=lambda s: s.lanes):
        if not step.slot_waits_s or not step.latencies_s:
            continue
        wait = _percentile(step.slot_waits_s, 90)
        if wait > share * max(step.service_s, 1e-9):
            return step.lanes
    return None


def kv_memory_bytes(num_ctx: int, lanes: int, bytes_per_token: int) -> int:
    """KV-cache size Ollama allocates for `lanes` slots of `num_ctx` tokens each."""
    return num_ctx * lanes * bytes_per_token


def format_bytes(count: float) -> str:
    """`1.5 GiB`-style text."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.1f} {unit}" if unit != "B" else f"{count:.0f} B"
        count /= 1024
    return f"{count:.1f} TiB"


def render_table(steps: Sequence[StepResult], knee: int | None = None) -> str:
    """The sweep as a plain-text table; the knee row is marked."""
    lines = [f"{'lanes':>5}  {'tokens/s':>9}  {'req/s':>7}  {'p95':>8}  {'slot wait':>9}", "-" * 48]
    for s in steps:
        wait = _percentile(s.slot_waits_s, 50) if s.slot_waits_s else math.nan
        mark = "  <- knee" if s.lanes == knee else ""
        lines.append(
            f"{s.lanes:>5}  {s.tokens_per_s:>9.1f}  {s.requests_per_s:>7.2f}  "
            f"{s.p95_s:>7.2f}s  {wait:>8.2f}s{mark}"
        )
    return "\n".join(lines)


def render_chart(steps: Sequence[StepResult], width: int = 40) -> str:
    """Output tokens/s per lane count as horizontal bars."""
    best = max((s.tokens_per_s for s in steps), default=0.0) or 1.0
    return "\n".join(
        f"{s.lanes:>5} | {'█' * max(1, round(width * s.tokens_per_s / best)):<{width}} "
        f"{s.tokens_per_s:.1f} tok/s"
        for s in steps
    )


def parallel_advice(max_lanes: int) -> str:
    """How to let Ollama run `max_lanes` requests at once, so its slots do not cap the sweep."""
    return (
        f"set OLLAMA_NUM_PARALLEL={max_lanes} for the sweep: `lanes install --lanes {max_lanes}`, "
        f'or on Linux `systemctl edit ollama.service` (Environment="OLLAMA_NUM_PARALLEL='
        f'{max_lanes}"), on macOS `launchctl setenv OLLAMA_NUM_PARALLEL {max_lanes}`; then '
        "restart Ollama"
    )


def render_report(steps: Sequence[StepResult], knee: int, max_lanes: int) -> str:
    """The sweep's table and chart, whether Ollama's own slots capped it, and the knee."""
    parts = ["\n" + render_table(steps, knee) + "\n\n" + render_chart(steps) + "\n"]
    queued = ollama_queued_from(steps)
    if queued is not None:
        ran = max((s.lanes for s in steps if s.lanes < queued), default=1)
        parts.append(
            f"Requests waited inside Ollama from {queued} at once: it ran at most {ran} "
            f"together, so its slots cap the sweep; {parallel_advice(max_lanes)}."
        )
    best = max(steps, key=lambda s: s.tokens_per_s)
    parts.append(
        f"Recommended lanes: {knee} (best {best.tokens_per_s:.1f} tok/s at {best.lanes}; "
        f"{knee} is the smallest count within 5% of it)."
    )
    return "\n".join(parts)


def kv_report(num_ctx: int, bytes_per_token: int | None, lanes: Iterable[int]) -> list[str]:
    """One line per lane count: the KV cache Ollama allocates; or why it is unknown."""
    if not (bytes_per_token and num_ctx):
        return ["KV cache size: unknown (Ollama reports no layer and head counts)."]
    return [
        f"KV cache at {n} lanes: {num_ctx} ctx × {n} × {bytes_per_token} B/token = "
        f"{format_bytes(kv_memory_bytes(num_ctx, n, bytes_per_token))}."
        for n in sorted(set(lanes))
    ]
