"""ChangeNotifier: a Recorder that passes every event on and tells the feed when a request
queued, was admitted or finished, so open dashboards see it at once."""

from __future__ import annotations

from collections.abc import Callable

from proxy.stats.chunks import FinalMetrics
from proxy.stats.recorder import Outcome, Recorder

__all__ = ["ChangeNotifier"]


class ChangeNotifier(Recorder):
    """Wraps the app's recorder; `changed` must only set a flag (it runs on the request path)."""

    __slots__ = ("_changed", "_inner")

    def __init__(self, inner: Recorder, changed: Callable[[], None]) -> None:
        self._inner, self._changed = inner, changed

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
        self._inner.request_received(
            rid,
            client=client,
            priority=priority,
            model=model,
            route=route,
            now=now,
            prompt_chars=prompt_chars,
        )
        self._changed()

    def request_admitted(
        self, rid: int, *, host: str, lane: int, options: dict[str, object], now: float
    ) -> None:
        self._inner.request_admitted(rid, host=host, lane=lane, options=options, now=now)
        self._changed()

    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        self._inner.upstream_headers(rid, status=status, now=now)

    def chunk_relayed(self, rid: int, tokens: int, now: float) -> None:
        self._inner.chunk_relayed(rid, tokens, now)

    def request_finished(
        self, rid: int, *, outcome: Outcome, now: float, answer: FinalMetrics | None = None
    ) -> None:
        self._inner.request_finished(rid, outcome=outcome, now=now, answer=answer)
        self._changed()
