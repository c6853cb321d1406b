"""Ollama's per-call metrics: read from native or /v1 replies, summed, and checked (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CallMetrics", "from_native", "from_openai", "looks_truncated"]


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class CallMetrics:
    """What Ollama reports about one call; durations in nanoseconds, None when not reported."""

    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    load_duration: int | None = None
    total_duration: int | None = None
    done_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict, for storage and export."""
        return asdict(self)

    @property
    def length_stop(self) -> bool:
        """Generation stopped at num_predict (`done_reason: length`)."""
        return self.done_reason == "length"


def from_native(data: dict[str, Any]) -> CallMetrics:
    """Metrics from a native `/api/chat` final object (zero values are omitted by Ollama)."""
    reason = data.get("done_reason")
    return CallMetrics(
        prompt_eval_count=_int(data, "prompt_eval_count"),
        prompt_eval_duration=_int(data, "prompt_eval_duration"),
        eval_count=_int(data, "eval_count"),
        eval_duration=_int(data, "eval_duration"),
        load_duration=_int(data, "load_duration"),
        total_duration=_int(data, "total_duration"),
        done_reason=reason if isinstance(reason, str) else None,
    )


def from_openai(data: dict[str, Any]) -> CallMetrics:
    """Metrics from a `/v1/chat/completions` reply: token counts and finish reason only."""
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    choices = data.get("choices") or [{}]
    reason = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
    return CallMetrics(
        prompt_eval_count=_int(usage or {}, "prompt_tokens"),
        eval_count=_int(usage or {}, "completion_tokens"),
        done_reason=reason if isinstance(reason, str) else None,
    )


def looks_truncated(metrics: CallMetrics, *, num_ctx: int, estimated_prompt: int) -> bool:
    """Probable prompt truncation: `prompt_eval_count` at num_ctx (Ollama <= 0.29), or at about
    half of it while well below the prompt's estimated size (0.30+ keeps ~num_ctx/2)."""
    seen = metrics.prompt_eval_count
    if seen is None:
        return False
    if seen >= num_ctx * 0.98:
        return True
    near_half = abs(seen - num_ctx / 2) <= num_ctx * 0.02
    return near_half and estimated_prompt >= seen * 1.5
