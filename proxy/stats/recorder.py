"""The events the request path reports, for statistics: a protocol, the Outcome, a null recorder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from proxy.stats.chunks import FinalMetrics

__all__ = ["NullRecorder", "Outcome", "OutcomeKind", "Recorder", "Tee"]

OutcomeKind = Literal["completed", "failed", "cancelled", "rejected"]


@dataclass(slots=True)  # read-only by convention: frozen would cost 5x per request
class Outcome:
    """How one request ended, decided once; the access line and the statistics both read it.

    - `completed`: relayed to the end with a status below 400;
    - `failed`: an error answer (the proxy's or the upstream's), or a stream cut by the upstream;
    - `cancelled`: the client left (`status` 499), or stopped reading (`reason` client_stalled);
    - `rejected`: answered 503 while waiting for a lane (queue full, wait limit, drain).
    """

    kind: OutcomeKind
    status: int
    reason: str | None = None
    admitted: bool = False  # it held a lane at some point
    bytes: int = 0


class Recorder(Protocol):
    """What the request path tells the statistics side about each request that takes a lane.

    `rid` is a per-process request number. Times are `time.monotonic()` seconds, read at the
    edge and passed in. Every call is O(1) and never raises into the request path. A request
    starts with `request_received` and ends with exactly one `request_finished`; in between it
    may be admitted more than once (a retry on another host takes a new lane).
    """

    def request_received(
        self,
        rid: int,
        *,
        client: str,
        priority: str,
        model: str,
        route: str,
        now: float,
        prompt_chars: int = 0,
    ) -> None:
        """A request entered the proxy and queues for a lane; `prompt_chars`: its prompt's
        length in characters (to tell how large a context a truncated prompt needed)."""

    def request_admitted(
        self, rid: int, *, host: str, lane: int, options: dict[str, object], now: float
    ) -> None:
        """Got lane number `lane` (0-based) on `host`; `options` are its Ollama options."""

    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        """Upstream answered with `status`; the body may still stream."""

    def chunk_relayed(self, rid: int, tokens: int, now: float) -> None:
        """One body chunk was relayed to the client, streaming `tokens` tokens (counted once,
        on the request path, by its `StreamTally`)."""

    def request_finished(
        self, rid: int, *, outcome: Outcome, now: float, answer: FinalMetrics | None = None
    ) -> None:
        """The request ended; its lane, if it held one, is free. `answer` is what the relayed
        answer's last object told (None when nothing was relayed)."""


class NullRecorder(Recorder):
    """Records nothing; for tools and tests that run the proxy without statistics.

    It inherits the protocol's methods, whose bodies do nothing.
    """


class Tee(Recorder):
    """Hands every event to two recorders, in order (the app's ledger and a test's recorder)."""

    __slots__ = ("_first", "_second")

    def __init__(self, first: Recorder, second: Recorder) -> None:
        self._first, self._second = first, second

    def request_received(
        self,
        rid: int,
        *,
        client: str,
        priority: str,
        model: str,
        route: str,
        now: float,
        prompt_chars: int = 0,
    ) -> None:
        for rec in (self._first, self._second):
            rec.request_received(
                rid,
                client=client,
                priority=priority,
                model=model,
                route=route,
                now=now,
                prompt_chars=prompt_chars,
            )

    def request_admitted(
        self, rid: int, *, host: str, lane: int, options: dict[str, object], now: float
    ) -> None:
        for rec in (self._first, self._second):
            rec.request_admitted(rid, host=host, lane=lane, options=options, now=now)

    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        for rec in (self._first, self._second):
            rec.upstream_headers(rid, status=status, now=now)

    def chunk_relayed(self, rid: int, tokens: int, now: float) -> None:
        for rec in (self._first, self._second):
            rec.chunk_relayed(rid, tokens, now)

    def request_finished(
        self, rid: int, *, outcome: Outcome, now: float, answer: FinalMetrics | None = None
    ) -> None:
        for rec in (self._first, self._second):
            rec.request_finished(rid, outcome=outcome, now=now, answer=answer)
