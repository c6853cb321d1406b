"""The events the request path reports, for statistics; a protocol plus a do-nothing recorder."""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullRecorder", "Recorder"]


class Recorder(Protocol):
    """What the proxy tells the statistics side about each inference request.

    `rid` is a per-process request number. Times are `time.monotonic()` seconds,
    read at the edge (the handler) and passed in. Every call must be O(1) and must
    never raise into the request path. Exactly one of `request_rejected`,
    `request_cancelled(while_queued=True)` or `request_finished` ends a request.
    """

    def request_received(
        self, rid: int, *, client: str, priority: str, model: str, route: str, now: float
    ) -> None:
        """A request entered the proxy and will queue for a lane."""

    def request_rejected(self, rid: int, *, reason: str, now: float) -> None:
        """Answered without a lane (queue full, wait limit, shutdown); counts as a 503."""

    def request_admitted(
        self, rid: int, *, lane: int, options: dict[str, object], now: float
    ) -> None:
        """Got lane number `lane` (0-based); `options` are the request's Ollama options."""

    def request_cancelled(self, rid: int, *, while_queued: bool, now: float) -> None:
        """The client went away; when running, the upstream request was aborted."""

    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        """Upstream answered with `status`; the body may still stream."""

    def chunk_relayed(self, rid: int, data: bytes, now: float) -> None:
        """One body chunk was relayed to the client (may hold several or partial lines)."""

    def request_finished(
        self, rid: int, *, status: int, outcome: str, reason: str | None, now: float
    ) -> None:
        """The lane is free. `outcome`: completed, failed or cancelled; `reason` why failed."""


class NullRecorder(Recorder):
    """Records nothing; for tools and tests that run the proxy without statistics.

    It inherits the protocol's methods, whose bodies do nothing.
    """
