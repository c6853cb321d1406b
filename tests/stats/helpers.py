"""Test helpers for statistics: a settable clock and Ollama-shaped response bodies."""

from __future__ import annotations

import json

from proxy.lanes.queue import HostSnapshot, QueueSnapshot
from proxy.stats.chunks import FinalMetrics, StreamTally
from proxy.stats.ledger import Ledger
from proxy.stats.recorder import Outcome, OutcomeKind
from proxy.stats.schema import StatsView
from proxy.stats.view import build_view

__all__ = [
    "Clock",
    "final_line",
    "make_stats",
    "ndjson_body",
    "relay_chunks",
    "run_request",
    "snapshot",
    "view_of",
]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_stats(clock: Clock, **kwargs: object) -> Ledger:
    """A Ledger on `clock` for one host "default" with 2 lanes unless told otherwise."""
    options: dict[str, object] = {"hosts": {"default": "http://sim"}, "lanes": 2, "max_queue": 100}
    options.update(kwargs)
    return Ledger(clock=clock, wall=lambda: 1_800_000_000.0, **options)  # type: ignore[arg-type]


def view_of(ledger: Ledger, queue: QueueSnapshot | None = None) -> StatsView:
    """The `/stats` view of `ledger` now (its own clock), with the queue's snapshot if given."""
    return build_view(ledger, queue, ledger.clock())


def final_line(
    *,
    prompt: int,
    output: int,
    load_ms: float = 1.0,
    prompt_ms: float = 10.0,
    eval_ms: float = 100.0,
    total_ms: float | None = None,
    context: int = 0,
) -> bytes:
    """Ollama's final /api/generate chunk with the given counts and durations."""
    total = total_ms if total_ms is not None else load_ms + prompt_ms + eval_ms + 1.0
    doc: dict[str, object] = {
        "model": "m",
        "created_at": "2026-08-22T10:15:28.499127Z",
        "response": "",
        "done": True,
        "done_reason": "stop",
    }
    if context:
        doc["context"] = list(range(100_000, 100_000 + context))
    doc.update(
        total_duration=int(total * 1e6),
        load_duration=int(load_ms * 1e6),
        prompt_eval_count=prompt,
        prompt_eval_duration=int(prompt_ms * 1e6),
        eval_count=output,
        eval_duration=int(eval_ms * 1e6),
    )
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def ndjson_body(tokens: int, final: bytes) -> list[bytes]:
    """One chunk per streamed token, then the final chunk."""
    line = (
        b'{"model":"m","created_at":"2026-08-22T10:15:24Z",'
        b'"response":"ab \\"done\\":false","done":false}\n'
    )
    return [line] * tokens + [final]


def relay_chunks(
    stats: Ledger, rid: int, chunks: list[bytes], clock: Clock, *, sse: bool = False
) -> FinalMetrics:
    """Relay `chunks` as the request path does: one tally counts them, the ledger hears the
    counts; returns what the answer's last object told."""
    tally = StreamTally(sse=sse)
    for chunk in chunks:
        stats.chunk_relayed(rid, tally.feed(chunk), clock())
    return tally.final()


def run_request(
    stats: Ledger,
    clock: Clock,
    rid: int,
    *,
    client: str = "alice",
    model: str = "m",
    route: str = "/api/generate",
    wait_s: float = 0.0,
    first_byte_s: float = 0.01,
    run_s: float = 0.5,
    chunks: list[bytes] | None = None,
    options: dict[str, object] | None = None,
    status: int = 200,
    outcome: OutcomeKind = "completed",
    reason: str | None = None,
    prompt_chars: int = 0,
) -> None:
    """Drive one request through every Recorder event, moving the clock as it goes."""
    stats.request_received(
        rid,
        client=client,
        priority="normal",
        model=model,
        route=route,
        now=clock(),
        prompt_chars=prompt_chars,
    )
    clock.advance(wait_s)
    stats.request_admitted(rid, host="default", lane=0, options=options or {}, now=clock())
    clock.advance(first_byte_s)
    stats.upstream_headers(rid, status=status, now=clock())
    answer = None
    if chunks is not None:
        answer = relay_chunks(stats, rid, chunks, clock, sse=route.startswith("/v1/"))
    clock.advance(max(0.0, run_s - first_byte_s))
    ending = Outcome(outcome, status, reason, admitted=True)
    stats.request_finished(rid, outcome=ending, now=clock(), answer=answer)


def snapshot(
    *,
    lanes: int = 2,
    busy: int = 0,
    depth: int = 0,
    oldest: float | None = None,
    by_client: dict[str, int] | None = None,
) -> QueueSnapshot:
    """A scheduler snapshot with the given counts, all on one host that may serve every ticket."""
    return QueueSnapshot(
        lanes=lanes,
        busy=busy,
        depth=depth,
        by_class={"normal": depth} if depth else {},
        by_client=by_client if by_client is not None else ({"alice": depth} if depth else {}),
        oldest_enqueued_at=oldest,
        hosts=(HostSnapshot("default", lanes, busy, True, depth, min(depth, lanes - busy)),),
    )
