"""Helpers for the proxy's socket tests: a recording Recorder, URLs and upstream counters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestServer

from proxy.stats.chunks import FinalMetrics
from proxy.stats.recorder import Outcome
from tests.fixtures_sim import base_url, sim_stats

__all__ = ["MODEL", "RecordingRecorder", "base_url", "sim_model_stats", "sim_stats"]

MODEL = "llama3.2:latest"


@dataclass
class RecordingRecorder:
    """A Recorder that keeps every event, to assert on the request path's reports."""

    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    clients: dict[int, str] = field(default_factory=dict)
    admitted_before: dict[int, int] = field(default_factory=dict)  # admissions before it queued
    on_admitted: Callable[[int], None] | None = None

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
        self.clients[rid] = client
        self.admitted_before[rid] = len(self.of("admitted"))
        self.events.append(("received", rid, {"client": client, "priority": priority}))

    def request_admitted(
        self, rid: int, *, host: str, lane: int, options: dict[str, object], now: float
    ) -> None:
        self.events.append(("admitted", rid, {"host": host, "lane": lane}))
        if self.on_admitted is not None:
            self.on_admitted(rid)

    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        self.events.append(("headers", rid, {"status": status}))

    def chunk_relayed(self, rid: int, tokens: int, now: float) -> None:
        return None

    def request_finished(
        self, rid: int, *, outcome: Outcome, now: float, answer: FinalMetrics | None = None
    ) -> None:
        self.events.append(
            (
                "finished",
                rid,
                {
                    "status": outcome.status,
                    "outcome": outcome.kind,
                    "reason": outcome.reason,
                    "admitted": outcome.admitted,
                },
            )
        )

    def of(self, kind: str) -> list[tuple[int, dict[str, Any]]]:
        return [(rid, data) for k, rid, data in self.events if k == kind]

    def admitted_clients(self) -> list[str]:
        return [self.clients[rid] for rid, _ in self.of("admitted")]

    def endings(self) -> dict[int, list[str]]:
        """Per request, the outcomes that ended it (exactly one each, when all is well)."""
        ends: dict[int, list[str]] = {rid: [] for rid in self.clients}
        for rid, data in self.of("finished"):
            ends[rid].append(data["outcome"])
        return ends


async def sim_model_stats(server: TestServer, model: str = MODEL) -> dict[str, Any]:
    """The simulator's counters for one model."""
    stats = await sim_stats(server)
    counters: dict[str, Any] = stats["models"][model]
    return counters
