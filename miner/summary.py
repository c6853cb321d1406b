"""The run summary: counts, rates and truncations from outcomes, and its text rendering (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from miner.outcome import Outcome

__all__ = [
    "LaneReport",
    "RunSummary",
    "VerdictReport",
    "lane_report",
    "render_summary",
    "summarize",
    "verdict_report",
]


@dataclass(frozen=True, slots=True)
class LaneReport:
    """What the proxy's `/stats` says about its lanes, read defensively."""

    configured: int | None
    busy_ratio_1m: float | None
    busy_ratio_5m: float | None
    admitted: int | None
    rejected: int | None


@dataclass(frozen=True, slots=True)
class VerdictReport:
    """The proxy's verdict at the end of the run: what limited throughput, and the fix."""

    kind: str
    explanation: str
    fix: str
    secondary: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The outcome of one `miner run`: what `lanes demo` and the CLI print."""

    segments: int
    ok: int = 0
    repaired: int = 0
    fallback: int = 0
    failed: int = 0
    skipped: int = 0
    earlier_failed: int = 0
    input_errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    calls: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    truncated: int = 0
    length_stops: int = 0
    items: int = 0
    lanes: LaneReport | None = None
    interrupted: bool = False
    verdict: VerdictReport | None = None
    stats_url: str | None = None  # the /stats read for the verdict, when the run asked

    @property
    def seg_per_s(self) -> float:
        """Segments mined per wall-clock second."""
        return self.segments / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def all_ok(self) -> bool:
        """Nothing failed (now or in earlier runs), no file was rejected, not interrupted."""
        return not (self.failed or self.earlier_failed or self.input_errors or self.interrupted)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict (stored with the run)."""
        return asdict(self) | {"seg_per_s": self.seg_per_s}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _get(doc: Any, *path: str) -> Any:
    for key in path:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def lane_report(before: dict[str, Any] | None, after: dict[str, Any] | None) -> LaneReport | None:
    """Lane facts from two `/stats` reads (None when the target is not our proxy)."""
    if after is None:
        return None

    def delta(*path: str) -> int | None:
        end, start = _num(_get(after, *path)), _num(_get(before, *path))
        return None if end is None else int(end - (start or 0))

    configured = _num(_get(after, "lanes", "configured"))
    return LaneReport(
        configured=None if configured is None else int(configured),
        busy_ratio_1m=_num(_get(after, "utilization", "busy_ratio_1m")),
        busy_ratio_5m=_num(_get(after, "utilization", "busy_ratio_5m")),
        admitted=delta("counters", "admitted"),
        rejected=delta("counters", "rejected"),
    )


def verdict_report(after: dict[str, Any] | None) -> VerdictReport | None:
    """The verdict in a `/stats` read (None when it has none, or an odd shape)."""
    found = _get(after, "verdict")
    texts = [_get(found, key) for key in ("kind", "explanation", "fix")]
    if not all(isinstance(t, str) for t in texts):
        return None
    others = _get(after, "secondary")
    kinds = [_get(o, "kind") for o in others] if isinstance(others, list) else []
    kind, explanation, fix = (str(t) for t in texts)
    return VerdictReport(kind, explanation, fix, tuple(k for k in kinds if isinstance(k, str)))


def _verdict_lines(s: RunSummary) -> list[str]:
    """The summary's last lines: the proxy's verdict, or one line saying it could not be read."""
    if s.verdict is None:
        if s.stats_url is None:
            return []
        return [f"verdict    unknown: no ollama-lanes statistics at {s.stats_url}"]
    v = s.verdict
    lines = [f"verdict    {v.kind}: {v.explanation}", f"fix        {v.fix}"]
    if v.secondary:
        lines.append(f"also       {', '.join(v.secondary)}")
    return lines


def summarize(
    outcomes: Sequence[Outcome], *, wall_s: float, retries: int, **extra: Any
) -> RunSummary:
    """Totals over the outcomes of one run."""
    metrics = [o.metrics for o in outcomes]
    return RunSummary(
        segments=len(outcomes),
        ok=sum(o.status == "ok" for o in outcomes),
        repaired=sum(o.status == "repaired" for o in outcomes),
        fallback=sum(o.status == "fallback" for o in outcomes),
        failed=sum(o.status == "failed" for o in outcomes),
        wall_s=wall_s,
        calls=sum(len(o.calls) for o in outcomes),
        retries=retries,
        prompt_tokens=sum(m.prompt_eval_count or 0 for m in metrics),
        output_tokens=sum(m.eval_count or 0 for m in metrics),
        prefill_s=sum(m.prompt_eval_duration or 0 for m in metrics) / 1e9,
        decode_s=sum(m.eval_duration or 0 for m in metrics) / 1e9,
        truncated=sum(o.truncated for o in outcomes),
        length_stops=sum(o.length_stop for o in outcomes),
        items=sum(o.item_count for o in outcomes),
        **extra,
    )


def _rate(tokens: int, seconds: float) -> str:
    return f"{tokens / seconds:,.0f} tok/s" if seconds > 0 else "n/a"


def render_summary(s: RunSummary, db: str | None = None) -> str:
    """The summary as aligned text lines (with the database `db`, when given), ending with
    the proxy's verdict."""
    if not s.segments:
        lines = [f"segments   nothing to mine; {s.skipped} already done"]
        if s.earlier_failed:
            lines.append(
                f"earlier    {s.earlier_failed} failed in earlier runs (see miner retry-failed)"
            )
        lines += [f"input      {err}" for err in s.input_errors]
        lines += [f"db         {db}"] if db is not None else []
        return "\n".join(lines)
    lines = [
        f"segments   {s.segments} mined: {s.ok} ok, {s.repaired} repaired, "
        f"{s.fallback} fallback, {s.failed} failed; {s.skipped} already done",
        *(
            [f"earlier    {s.earlier_failed} failed in earlier runs (see miner retry-failed)"]
            if s.earlier_failed
            else []
        ),
        f"items      {s.items} extracted",
        f"time       {s.wall_s:.1f} s wall, {s.seg_per_s:.2f} seg/s, {s.calls} calls, "
        f"{s.retries} retries",
        f"prefill    {s.prompt_tokens:,} tokens: {_rate(s.prompt_tokens, s.wall_s)} aggregate, "
        f"{_rate(s.prompt_tokens, s.prefill_s)} per call",
        f"decode     {s.output_tokens:,} tokens: {_rate(s.output_tokens, s.wall_s)} aggregate, "
        f"{_rate(s.output_tokens, s.decode_s)} per call",
        f"truncated  {s.truncated} prompts at num_ctx, {s.length_stops} replies stopped at "
        "num_predict",
    ]
    if s.lanes is not None:
        lr = s.lanes

        def pct(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.0%}"

        lines.append(
            f"lanes      {lr.configured if lr.configured is not None else '?'} configured, "
            f"busy {pct(lr.busy_ratio_1m)} (1 min), {pct(lr.busy_ratio_5m)} (5 min); "
            f"{lr.admitted if lr.admitted is not None else '?'} admitted, "
            f"{lr.rejected if lr.rejected is not None else '?'} rejected during the run"
        )
    lines += [f"input      {err}" for err in s.input_errors]
    if s.interrupted:
        lines.append("stopped    interrupted; finished segments are saved, rerun to resume")
    lines += [f"db         {db}"] if db is not None else []
    return "\n".join(lines + _verdict_lines(s))
