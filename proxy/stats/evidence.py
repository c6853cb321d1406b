"""What the verdict reads: recent named events (cut prompts, reloads, waits inside Ollama), the
lane-map rows of the models in use, and `Recent`, the frozen record of the last window."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

__all__ = [
    "Change",
    "EvidenceLog",
    "LaneFact",
    "Queueing",
    "Recent",
    "Reload",
    "Truncation",
]


@dataclass(frozen=True, slots=True)
class Truncation:
    """One completed request whose prompt Ollama cut to fit `num_ctx` (a `prompt_truncated`)."""

    counter: ClassVar[str] = "truncated"  # the ledger's per-second count of these
    at: float
    client: str
    model: str
    num_ctx: int
    prompt_tokens: int  # prompt_eval_count: what Ollama kept
    estimated_tokens: int  # the prompt's characters / 4; 0 when unknown
    num_predict: int | None = None  # the answer's budget, when the request set one


@dataclass(frozen=True, slots=True)
class Change:
    """One load-time option that differs from the previous request's: `before` → `after`."""

    option: str
    before: str  # `auto` when absent
    after: str


@dataclass(frozen=True, slots=True)
class Reload:
    """One request that made Ollama reload a warm model (a `model_reloaded`)."""

    counter: ClassVar[str] = "reloaded"
    at: float
    client: str
    model: str
    load_ns: int
    changes: tuple[Change, ...]  # empty when no option changed (an eviction, a restart)
    previous_client: str | None  # who sent the options the model was loaded with


@dataclass(frozen=True, slots=True)
class Queueing:
    """One request that waited inside Ollama for a parallel slot (an `upstream_queueing`)."""

    counter: ClassVar[str] = "queued_upstream"
    at: float
    host: str
    model: str  # as Ollama lists it
    client: str
    wait_ns: int


@dataclass(frozen=True, slots=True)
class LaneFact:
    """One model's lanes on one host, for a model that took a lane in the window."""

    host: str
    model: str  # as Ollama lists it
    lanes: int  # the most requests the proxy sends it at once
    source: str
    ollama_lanes: int  # what Ollama runs it with, by the lane map
    ollama_source: str
    cap: int | None  # the host's lanes when set by hand
    knee: int | None  # the knee `lanes tune` measured for the host, when recorded


@dataclass(frozen=True, slots=True)
class Recent:
    """The last window of what the proxy saw, as the verdict reads it (all sums are exact).

    Lane time is in lane-seconds: one lane held for one second. Durations from Ollama's final
    chunks are summed over the requests that completed in the window.
    """

    window_s: float  # seconds covered: the window, or the uptime when shorter
    lanes: int  # lanes now
    busy_lane_s: float  # lane-seconds held
    waiting_s: float  # seconds during which at least one request waited for a lane
    received: int  # requests that entered the queue
    completed: int  # requests answered in full
    depth: int  # requests waiting now
    busy: int  # lanes held now
    prefill_ns: int  # prompt_eval_duration
    decode_ns: int  # eval_duration
    reload_ns: int  # load_duration of the requests that reloaded a warm model
    upstream_wait_ns: int  # time requests waited inside Ollama for a slot
    truncated: int = 0  # requests whose prompt Ollama cut
    reloaded: int = 0  # requests that reloaded a warm model
    truncations: tuple[Truncation, ...] = ()
    reloads: tuple[Reload, ...] = ()
    queueing: tuple[Queueing, ...] = ()
    lane_facts: tuple[LaneFact, ...] = ()


Event = Truncation | Reload | Queueing
E = TypeVar("E", Truncation, Reload, Queueing)


class EvidenceLog:
    """The latest `capacity` events of each kind; O(1) to add, bounded memory.

    Sums and counts (lane time, reload time, Ollama-side waits, events of each kind) live in
    the ledger's per-second buckets, which are exact; these events only carry the names an
    explanation needs.
    """

    def __init__(self, capacity: int = 256) -> None:
        self.truncations: deque[Truncation] = deque(maxlen=capacity)
        self.reloads: deque[Reload] = deque(maxlen=capacity)
        self.queueing: deque[Queueing] = deque(maxlen=capacity)

    def add(self, event: Event) -> None:
        """Keep one event (the oldest of its kind goes when full)."""
        if isinstance(event, Truncation):
            self.truncations.append(event)
        elif isinstance(event, Reload):
            self.reloads.append(event)
        else:
            self.queueing.append(event)

    @staticmethod
    def _since(events: Iterable[E], cutoff: float) -> tuple[E, ...]:
        return tuple(e for e in events if e.at > cutoff)

    def window(
        self, cutoff: float
    ) -> tuple[tuple[Truncation, ...], tuple[Reload, ...], tuple[Queueing, ...]]:
        """The events after `cutoff` (monotonic seconds), oldest first, per kind."""
        return (
            self._since(self.truncations, cutoff),
            self._since(self.reloads, cutoff),
            self._since(self.queueing, cutoff),
        )
