"""What statistics keep per request, per key and per queue, and the never-raise guard."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ParamSpec, Protocol

import structlog

from proxy.stats.chunks import StreamTally

__all__ = ["Finished", "Keyed", "QueueState", "Request", "guarded"]

_P = ParamSpec("_P")
_log = structlog.get_logger("proxy.stats")


class QueueState(Protocol):
    """The scheduler's snapshot, as far as statistics read it."""

    @property
    def lanes(self) -> int: ...
    @property
    def busy(self) -> int: ...
    @property
    def depth(self) -> int: ...
    @property
    def by_class(self) -> Mapping[str, int]: ...
    @property
    def by_client(self) -> Mapping[str, int]: ...
    @property
    def oldest_enqueued_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Finished:
    """One request that held a lane and let it go; handed to observers such as histograms."""

    client: str
    priority: str
    model: str
    route: str
    outcome: str
    wait_s: float
    first_byte_s: float | None
    total_s: float


@dataclass(slots=True)
class Request:
    """One request between `request_received` and its end: what stats keep about it."""

    client: str
    priority: str
    model: str
    route: str
    received_at: float
    tally: StreamTally
    admitted_at: float | None = None
    lane: int = -1
    options: dict[str, object] = field(default_factory=dict)
    previous: dict[str, object] | None = None
    first_byte_at: float | None = None
    status: int | None = None


@dataclass(slots=True)
class Keyed:
    """Running totals for one client key or model."""

    requests: int = 0
    prompt_tokens: int = 0
    eval_tokens: int = 0
    wait_sum_s: float = 0.0
    waits: int = 0


def guarded(method: Callable[_P, None]) -> Callable[_P, None]:
    """Statistics never raise into the request path: log and carry on."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            _log.exception("stats_record_failed", method=method.__name__)

    return wrapper
