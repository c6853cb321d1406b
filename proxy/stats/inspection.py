"""What one completed request's final chunk shows: its warnings, and the verdict's evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.lanes.snapshot import ModelSnapshot
from proxy.stats.chunks import FinalMetrics
from proxy.stats.evidence import Queueing, Reload, Truncation
from proxy.stats.records import HostSeen, Request
from proxy.stats.warnings import (
    WarningCheck,
    final_warnings,
    option_changes,
    upstream_wait_ms,
)

__all__ = ["SLOT_WAIT_FLOOR", "Findings", "inspect", "listed", "warning_check", "whole"]

# A wait inside Ollama shorter than this share of the request's own time there (load +
# prefill + decode) is noise, templating and the network, not a wait for a slot.
SLOT_WAIT_FLOOR = 0.1


def listed(model: str) -> str:
    """The name Ollama lists a model under (`llama3.2` -> `llama3.2:latest`)."""
    return model if ":" in model else f"{model}:latest"


def whole(value: Any) -> int | None:
    """`value` if it is an integer (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def warning_check(
    req: Request,
    final: FinalMetrics,
    first_byte_s: float | None,
    *,
    seen: HostSeen | None,
    several: bool,
    warm_at: float | None,
    row: ModelSnapshot | None,
) -> WarningCheck:
    """What the final-chunk checks need of `req`: its num_ctx (its own, else `/api/ps`'s),
    whether its model answered before on its host, and the lane map's row for it there."""
    name = listed(req.model)
    mine = None if seen is None else next((m for m in seen.loaded if m.name == name), None)
    own = whole(req.options.get("num_ctx"))
    return WarningCheck(
        model=req.model,
        client=req.client,
        host=req.host if several else None,
        num_ctx=own if own is not None else None if mine is None else mine.context_length,
        options=req.options,
        previous=req.previous,
        warm=warm_at is not None and req.admitted_at is not None and warm_at <= req.admitted_at,
        still_loaded=seen is None or seen.checked_at is None or mine is not None,
        first_byte_ms=None if first_byte_s is None else first_byte_s * 1000.0,
        streamed_tokens=req.streamed,
        final=final,
        lanes_row=row,
    )


@dataclass(slots=True)
class Findings:
    """The warnings of one request, and what the verdict keeps of them."""

    warnings: list[tuple[str, str]]  # (kind, example)
    events: list[Truncation | Reload | Queueing] = field(default_factory=list)
    reload_ns: int = 0  # its load_duration, when it reloaded a warm model
    upstream_wait_ns: int = 0  # its wait inside Ollama for a slot, when one shows


def inspect(
    req: Request,
    check: WarningCheck,
    now: float,
    reload_warn_ms: float,
    upstream_queue_warn_ms: float,
) -> Findings:
    """The final-chunk warnings of `req` (see `final_warnings`) and their evidence."""
    found = Findings(
        final_warnings(
            check, reload_warn_ms=reload_warn_ms, upstream_queue_warn_ms=upstream_queue_warn_ms
        )
    )
    kinds = {kind for kind, _ in found.warnings}
    fin = check.final
    if "prompt_truncated" in kinds and check.num_ctx is not None:
        found.events.append(
            Truncation(
                now,
                req.client,
                req.model,
                check.num_ctx,
                fin.prompt_tokens or 0,
                req.prompt_chars // 4,
                req.num_predict,
            )
        )
    if "model_reloaded" in kinds:
        found.reload_ns = fin.load_ns or 0
        changes = tuple(option_changes(req.previous or {}, req.options))
        found.events.append(
            Reload(now, req.client, req.model, found.reload_ns, changes, req.previous_client)
        )
    wait_ms = upstream_wait_ms(check)  # counted below the warning's threshold too
    own_ms = ((fin.load_ns or 0) + (fin.prompt_eval_ns or 0) + (fin.eval_ns or 0)) / 1e6
    if wait_ms is not None and wait_ms >= max(1.0, SLOT_WAIT_FLOOR * own_ms):
        found.upstream_wait_ns = int(wait_ms * 1e6)
        found.events.append(
            Queueing(now, req.host, listed(req.model), req.client, found.upstream_wait_ns)
        )
    return found
