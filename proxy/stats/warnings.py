"""Ollama-aware warnings: what each one means, how it is detected, and a book of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from proxy.stats.chunks import FinalMetrics
from proxy.stats.evidence import Change
from proxy.stats.schema import WarningView

__all__ = [
    "HINTS",
    "LOAD_OPTIONS",
    "IdleWatch",
    "WarningBook",
    "WarningCheck",
    "changed_options",
    "final_warnings",
    "is_truncated",
    "option_changes",
    "queueing_cause",
    "upstream_wait_ms",
]

HINTS: dict[str, str] = {
    "prompt_truncated": (
        "Ollama cut the prompt silently to fit num_ctx; raise num_ctx for this model "
        "or send shorter prompts."
    ),
    "model_reloaded": (
        "Clients send different load-time options (usually num_ctx) for one model; "
        "use one num_ctx per model everywhere, or a Modelfile alias per context size."
    ),
    "upstream_queueing": (
        "Ollama ran fewer requests at once than the proxy sent; the example names the model "
        'and the likely cause. Use lanes = "auto" so the proxy learns each model\'s lanes from '
        "Ollama, fix model_lanes, or send every client through the proxy."
    ),
    "lanes_idle_with_queue": (
        "A bug in ollama-lanes: lanes stayed free while requests waited; "
        "please report it with this /stats output."
    ),
}

# Options that Ollama compares before reusing a loaded runner (reference §6.5).
LOAD_OPTIONS: tuple[str, ...] = (
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "use_mmap",
)


def is_truncated(prompt_tokens: int, num_ctx: int | None) -> bool:
    """True when `prompt_eval_count` shows Ollama cut the prompt (reference §6.8).

    Old runners cap the prompt at exactly `num_ctx` tokens; v0.30+ keeps
    `num_ctx - (num_ctx - num_keep) // 2` tokens, with `num_keep` 4 (5 with a BOS token).
    """
    if num_ctx is None or num_ctx <= 0:
        return False
    if prompt_tokens >= num_ctx:
        return True
    return any(prompt_tokens == num_ctx - (num_ctx - keep) // 2 for keep in (4, 5))


def option_changes(previous: Mapping[str, object], current: Mapping[str, object]) -> list[Change]:
    """The load-time options that differ (an absent one shows as `auto`)."""
    return [
        Change(name, _shown(previous.get(name)), _shown(current.get(name)))
        for name in LOAD_OPTIONS
        if previous.get(name) != current.get(name)
    ]


def _shown(value: object) -> str:
    return "auto" if value is None else str(value)


def changed_options(previous: Mapping[str, object], current: Mapping[str, object]) -> list[str]:
    """The load-time options that differ, as `name a → b` (absent shows as `auto`)."""
    return [f"{c.option} {c.before} → {c.after}" for c in option_changes(previous, current)]


@dataclass(slots=True)
class _Entry:
    count: int
    latest: str
    latest_at_unix_s: float


class WarningBook:
    """Counts each kind of warning with its latest example; never holds more than one per kind."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def add(self, kind: str, example: str, at_unix_s: float) -> None:
        """Record one occurrence of `kind` (a key of HINTS)."""
        entry = self._entries.get(kind)
        if entry is None:
            self._entries[kind] = _Entry(1, example, at_unix_s)
        else:
            entry.count += 1
            entry.latest = example
            entry.latest_at_unix_s = at_unix_s

    def count(self, kind: str) -> int:
        """How often `kind` was recorded."""
        entry = self._entries.get(kind)
        return entry.count if entry else 0

    def view(self) -> list[WarningView]:
        """One row per kind seen, in the order of HINTS."""
        return [
            WarningView(
                kind=kind,
                count=entry.count,
                latest=entry.latest,
                latest_at_unix_s=entry.latest_at_unix_s,
                hint=HINTS[kind],
            )
            for kind in HINTS
            if (entry := self._entries.get(kind)) is not None
        ]


class IdleWatch:
    """Notices free lanes next to a non-empty queue that last longer than `grace_s`.

    Between a finish and the next admission the state can be seen for an instant;
    only a state that persists across observations `grace_s` apart is a bug.
    Fires once per episode.
    """

    def __init__(self, grace_s: float = 1.0) -> None:
        self.grace_s = grace_s
        self._since: float | None = None
        self._fired = False

    def observe(self, *, stuck: bool, now: float) -> bool:
        """Feed one observation (`stuck`: a host has free lanes and work it could run);
        True when this episode just became a warning."""
        if not stuck:
            self._since = None
            self._fired = False
            return False
        if self._since is None:
            self._since = now
        if not self._fired and now - self._since >= self.grace_s:
            self._fired = True
            return True
        return False


@dataclass(slots=True)  # read-only by convention: frozen would cost 5x per request
class WarningCheck:
    """What the proxy knows about one completed request, for the final-chunk checks."""

    model: str
    client: str
    host: str | None  # named in examples when there are several hosts
    num_ctx: int | None
    options: Mapping[str, object]
    previous: Mapping[str, object] | None
    warm: bool
    still_loaded: bool
    first_byte_ms: float | None
    streamed_tokens: int
    final: FinalMetrics
    lanes_row: ModelLanes | None = None  # its lane-map row: why Ollama may have queued it


def final_warnings(
    facts: WarningCheck, *, reload_warn_ms: float, upstream_queue_warn_ms: float
) -> list[tuple[str, str]]:
    """The (kind, example) warnings one completed request shows; no prompt text in them."""
    out: list[tuple[str, str]] = []
    fin, who = facts.final, f"model {facts.model}, client {facts.client}"
    if facts.host is not None:
        who += f", upstream {facts.host}"
    if fin.prompt_tokens is not None and is_truncated(fin.prompt_tokens, facts.num_ctx):
        out.append(
            (
                "prompt_truncated",
                f"{who}: prompt_eval_count {fin.prompt_tokens} shows the prompt was cut "
                f"to fit num_ctx {facts.num_ctx}",
            )
        )
    load_ms = (fin.load_ns or 0) / 1e6
    if facts.warm and load_ms > reload_warn_ms:
        diff = changed_options(facts.previous or {}, facts.options)
        if diff or facts.still_loaded:
            why = f"; {', '.join(diff)} since the previous request" if diff else ""
            out.append(("model_reloaded", f"{who}: load_duration {load_ms:.0f} ms{why}"))
    queued_ms = upstream_wait_ms(facts)
    if queued_ms is not None and queued_ms > upstream_queue_warn_ms:
        row, model = facts.lanes_row, facts.model
        name = model if ":" in model else f"{model}:latest"
        cause = "" if row is None else f"; {queueing_cause(name, row)}"
        out.append(
            (
                "upstream_queueing",
                f"{who}: waited about {queued_ms:.0f} ms inside Ollama for a parallel slot{cause}",
            )
        )
    return out


def queueing_cause(model: str, row: ModelLanes) -> str:
    """The likely reason Ollama queued a request for `model`, from its lane-map row."""
    if row.ollama_lanes < row.lanes:
        return (
            f"likely cause: the proxy sends up to {row.lanes} at once ({row.source}) but Ollama "
            f"runs {model} with {row.ollama_lanes} ({row.ollama_source})"
        )
    if row.ollama_source == "assumed":
        return "likely cause: Ollama's NUM_PARALLEL could not be read, so 1 lane is assumed"
    return (
        f"likely cause: another client sends {model} to Ollama directly, not through the proxy "
        f"(the proxy sends up to {row.lanes}, {row.source})"
    )


class ModelLanes(Protocol):
    """A lane-map row, as statistics read it."""

    @property
    def lanes(self) -> int: ...
    @property
    def source(self) -> str: ...
    @property
    def ollama_lanes(self) -> int: ...
    @property
    def ollama_source(self) -> str: ...


def upstream_wait_ms(facts: WarningCheck) -> float | None:
    """Time spent waiting inside Ollama beyond load and prefill, when it is clear.

    Streamed: first byte minus the estimate (load + prefill + one decode step), and only
    when the first byte took over twice the estimate. Not streamed: Ollama's own
    `total - load - prompt_eval - eval`, which is its wait for a parallel slot (§4.2).
    """
    fin = facts.final
    load, prefill, decode = fin.load_ns or 0, fin.prompt_eval_ns or 0, fin.eval_ns or 0
    if facts.streamed_tokens > 0 and facts.first_byte_ms is not None:
        step = decode / fin.eval_tokens if fin.eval_tokens else 0
        estimate_ms = (load + prefill + step) / 1e6
        excess = facts.first_byte_ms - estimate_ms
        return excess if facts.first_byte_ms > 2 * estimate_ms else None
    if fin.total_ns is None:
        return None
    return (fin.total_ns - load - prefill - decode) / 1e6
