"""What statistics keep per request, per key and per host, and the never-raise guard."""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec

import structlog

from proxy.ollama import LoadedModel
from proxy.stats.recorder import OutcomeKind

__all__ = ["Finished", "HostCounters", "HostSeen", "Keyed", "Request", "guarded"]

_P = ParamSpec("_P")
_log = structlog.get_logger("proxy.stats")


@dataclass(slots=True)  # read-only by convention: frozen would cost 5x per request
class Finished:
    """One request that ended after entering the queue; handed to observers such as histograms."""

    client: str
    priority: str
    model: str
    route: str
    outcome: OutcomeKind
    wait_s: float
    first_byte_s: float | None
    total_s: float


@dataclass(slots=True)
class Request:
    """One request between `request_received` and `request_finished`: what stats keep of it."""

    client: str
    priority: str
    model: str
    route: str
    received_at: float
    prompt_chars: int = 0  # the prompt's length in characters (never its text)
    admitted_at: float | None = None
    host: str = ""
    lane: int = -1
    options: dict[str, object] = field(default_factory=dict)
    previous: dict[str, object] | None = None
    previous_client: str | None = None  # who sent `previous`
    num_predict: int | None = None
    first_byte_at: float | None = None
    status: int | None = None
    streamed: int = 0  # tokens streamed so far (the request path's tally)


@dataclass(slots=True)
class Keyed:
    """Running totals for one client key or model."""

    requests: int = 0
    prompt_tokens: int = 0
    eval_tokens: int = 0
    wait_sum_s: float = 0.0
    waits: int = 0
    served: float = 0.0  # w_in x prompt + w_out x output tokens, since start
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=4096))

    def serve(self, now: float, units: float) -> None:
        """`units` of served work finished at `now`."""
        self.served += units
        self.recent.append((now, units))

    def served_since(self, since: float) -> float:
        """Served units finished after `since` (within the last 4,096 requests)."""
        return sum(units for at, units in self.recent if at > since)


@dataclass(slots=True)
class HostSeen:
    """What the background poll last saw of one Ollama host."""

    url: str
    reachable: bool = False
    version: str | None = None
    loaded: list[LoadedModel] = field(default_factory=list)
    checked_at: float | None = None


@dataclass(frozen=True, slots=True)
class HostCounters:
    """The request path's own picture of one host: its breaker and what placement knows."""

    name: str
    healthy: bool
    warm_models: tuple[str, ...]
    requests: int
    swaps: int
    errors: int


def guarded(method: Callable[_P, None]) -> Callable[_P, None]:
    """Statistics never raise into the request path: log and carry on."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            _log.exception("stats_record_failed", method=method.__name__)

    return wrapper
