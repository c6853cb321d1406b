"""Stats: the recorder the request path reports to, and the frozen view it answers with."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from proxy.ollama import LoadedModel
from proxy.stats.chunks import FinalMetrics, StreamTally
from proxy.stats.records import Finished, Keyed, QueueState, Request, guarded
from proxy.stats.schema import StatsView
from proxy.stats.view import build_view
from proxy.stats.warnings import LOAD_OPTIONS, IdleWatch, RequestFacts, WarningBook, final_warnings
from proxy.stats.windows import SampleWindow, SecondBuckets

__all__ = ["OTHER", "Stats"]

OTHER = "(other)"


class Stats:
    """Implements `Recorder`: O(1) per event and per chunk, bounded memory, `view()` out."""

    def __init__(
        self,
        *,
        upstream_url: str,
        lanes: int,
        max_queue: int,
        reload_warn_ms: float = 500.0,
        upstream_queue_warn_ms: float = 500.0,
        max_keys: int = 64,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.lanes = lanes
        self.max_queue = max_queue
        self.reload_warn_ms = reload_warn_ms
        self.upstream_queue_warn_ms = upstream_queue_warn_ms
        self.max_keys = max_keys
        self.observers: list[Callable[[Finished], None]] = []
        self.started_at = clock()
        self.wall_offset = wall() - self.started_at
        self.requests: dict[int, Request] = {}
        self.running: dict[int, Request] = {}
        self.queued_by_class: Counter[str] = Counter()
        self.queued_by_client: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.failed_by_reason: Counter[str] = Counter()
        self.rejected_by_reason: Counter[str] = Counter()
        self.waits = SampleWindow()
        self.first_bytes = SampleWindow()
        self.totals = SampleWindow()
        self.buckets = SecondBuckets(
            ("output", "prefill_tokens", "prefill_ns", "decode_tokens", "decode_ns", "busy")
        )
        self.busy = 0
        self.busy_since = self.started_at
        self.prompt_tokens = 0
        self.eval_tokens = 0
        self.clients: dict[str, Keyed] = {}
        self.models: dict[str, Keyed] = {}
        self.last_options: dict[str, dict[str, object]] = {}
        self.warm_since: dict[str, float] = {}
        self.warnings = WarningBook()
        self.idle = IdleWatch()
        self.upstream_url = upstream_url
        self.upstream_reachable = False
        self.upstream_version: str | None = None
        self.loaded_models: list[LoadedModel] = []
        self.upstream_checked_at: float | None = None

    @guarded
    def request_received(
        self, rid: int, *, client: str, priority: str, model: str, route: str, now: float
    ) -> None:
        client = self._key(self.clients, client)
        model = self._key(self.models, model)
        self.requests[rid] = Request(
            client, priority, model, route, now, StreamTally(sse=route.startswith("/v1/"))
        )
        self.counts["received"] += 1
        self.clients[client].requests += 1
        self.models[model].requests += 1
        self.queued_by_class[priority] += 1
        self.queued_by_client[client] += 1

    @guarded
    def request_rejected(self, rid: int, *, reason: str, now: float) -> None:
        req = self.requests.pop(rid, None)
        self.counts["rejected"] += 1
        self._count_reason(self.rejected_by_reason, reason)
        if req is not None and req.admitted_at is None:
            self._unqueue(req)

    @guarded
    def request_admitted(
        self, rid: int, *, lane: int, options: dict[str, object], now: float
    ) -> None:
        req = self.requests.get(rid)
        if req is None or req.admitted_at is not None:
            return
        self._unqueue(req)
        req.admitted_at, req.lane = now, lane
        wait = now - req.received_at
        self.waits.add(now, wait * 1000.0)
        for row in (self.clients[req.client], self.models[req.model]):
            row.wait_sum_s += wait
            row.waits += 1
        req.options = {k: options[k] for k in LOAD_OPTIONS if k in options}
        req.previous = self.last_options.get(req.model)
        self.last_options[req.model] = req.options
        self.running[rid] = req
        self.counts["admitted"] += 1
        self._busy_change(+1, now)

    @guarded
    def request_cancelled(self, rid: int, *, while_queued: bool, now: float) -> None:
        if not while_queued:
            return  # request_finished(outcome="cancelled") follows and counts it
        req = self.requests.pop(rid, None)
        self.counts["cancelled_while_queued"] += 1
        if req is not None and req.admitted_at is None:
            self._unqueue(req)

    @guarded
    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        req = self.requests.get(rid)
        if req is not None:
            req.status = status

    @guarded
    def chunk_relayed(self, rid: int, data: bytes, now: float) -> None:
        req = self.requests.get(rid)
        if req is None:
            return
        if req.first_byte_at is None:
            req.first_byte_at = now
        new = req.tally.feed(data)
        if new:
            self.buckets.add(now, "output", new)

    @guarded
    def request_finished(
        self, rid: int, *, status: int, outcome: str, reason: str | None, now: float
    ) -> None:
        req = self.requests.pop(rid, None)
        if req is None:
            return
        admitted_at = req.admitted_at
        if admitted_at is None:
            self._unqueue(req)
            admitted_at = now
        elif self.running.pop(rid, None) is not None:
            self._busy_change(-1, now)
        final = req.tally.final()
        if outcome == "completed" and status >= 400:  # relayed fine, but an error answer
            outcome, reason = "failed", f"http_{status}"
        if outcome == "completed":
            self.counts["completed"] += 1
            self.totals.add(now, (now - req.received_at) * 1000.0)
        elif outcome == "cancelled":
            self.counts["cancelled_while_running"] += 1
        else:
            self.counts["failed"] += 1
            self._count_reason(self.failed_by_reason, reason or outcome)
        failed_upstream = outcome == "failed" and (
            req.status is None or (reason or "").startswith("upstream")
        )
        if final.error or (req.status or 0) >= 500 or failed_upstream:
            self.counts["upstream_errors"] += 1
        first_byte_s = None
        if req.first_byte_at is not None:
            first_byte_s = max(0.0, req.first_byte_at - admitted_at)
            self.first_bytes.add(now, first_byte_s * 1000.0)
        self._count_tokens(req, final, now)
        if outcome == "completed" and final.total_ns is not None:
            self._check_warnings(req, final, first_byte_s)
        done = Finished(
            req.client,
            req.priority,
            req.model,
            req.route,
            outcome,
            admitted_at - req.received_at,
            first_byte_s,
            now - req.received_at,
        )
        for observer in self.observers:
            observer(done)

    @guarded
    def upstream_polled(
        self, *, reachable: bool, version: str | None, models: list[LoadedModel] | None
    ) -> None:
        """The background poll's latest look at `/api/version` and `/api/ps`."""
        self.upstream_reachable = reachable
        self.upstream_checked_at = self.clock()
        if version is not None:
            self.upstream_version = version
        if models is not None:
            self.loaded_models = models

    @guarded
    def observe_queue(self, queue: QueueState) -> None:
        """Check the scheduler's state for lanes idling next to waiting requests.

        Each host (`hosts`: HostSnapshot) is checked on its own: it is stuck when it is healthy
        with a free lane and queued work it could start now (`runnable`).
        """
        hosts = getattr(queue, "hosts", None)
        pools = (
            [(h.lanes, h.busy, h.eligible) for h in hosts if h.healthy and h.runnable > 0]
            if hosts is not None
            else [(queue.lanes, queue.busy, queue.depth)]
        )
        stuck = [(lanes, busy, depth) for lanes, busy, depth in pools if depth and busy < lanes]
        if self.idle.observe(stuck=bool(stuck), now=self.clock()):
            lanes, busy, depth = stuck[0]
            self._warn(
                "lanes_idle_with_queue",
                f"{busy} of {lanes} lanes busy while {depth} requests "
                f"waited for over {self.idle.grace_s:g} s",
            )

    def view(self, queue: QueueState | None = None) -> StatsView:
        """The frozen `/stats` answer, merged with the scheduler's snapshot when given."""
        if queue is not None:
            self.observe_queue(queue)
        return build_view(self, queue, self.clock())

    def _key(self, table: dict[str, Keyed], name: str) -> str:
        if name not in table:
            if len(table) >= self.max_keys:
                name = OTHER
            table.setdefault(name, Keyed())
        return name

    def _count_reason(self, table: Counter[str], reason: str) -> None:
        table[reason if reason in table or len(table) < self.max_keys else OTHER] += 1

    def _unqueue(self, req: Request) -> None:
        pairs = ((self.queued_by_class, req.priority), (self.queued_by_client, req.client))
        for table, key in pairs:
            table[key] -= 1
            if table[key] <= 0:
                del table[key]

    def _busy_change(self, delta: int, now: float) -> None:
        if self.busy > 0:
            self.buckets.add_span(self.busy_since, now, "busy", self.busy)
        self.busy = max(0, self.busy + delta)
        self.busy_since = now

    def _count_tokens(self, req: Request, final: FinalMetrics, now: float) -> None:
        prompt = final.prompt_tokens or 0
        output = final.eval_tokens if final.eval_tokens is not None else req.tally.tokens
        if output > req.tally.tokens:
            self.buckets.add(now, "output", output - req.tally.tokens)
        self.prompt_tokens += prompt
        self.eval_tokens += output
        for row in (self.clients[req.client], self.models[req.model]):
            row.prompt_tokens += prompt
            row.eval_tokens += output
        if final.prompt_eval_ns and final.prompt_tokens:
            self.buckets.add(now, "prefill_tokens", final.prompt_tokens)
            self.buckets.add(now, "prefill_ns", final.prompt_eval_ns)
        if final.eval_ns and final.eval_tokens:
            self.buckets.add(now, "decode_tokens", final.eval_tokens)
            self.buckets.add(now, "decode_ns", final.eval_ns)

    def _warn(self, kind: str, example: str) -> None:
        self.warnings.add(kind, example, round(self.clock() + self.wall_offset, 3))

    def _check_warnings(
        self, req: Request, final: FinalMetrics, first_byte_s: float | None
    ) -> None:
        name = req.model if ":" in req.model else f"{req.model}:latest"
        loaded = {m.name: m.context_length for m in self.loaded_models}
        own = req.options.get("num_ctx")
        num_ctx = own if isinstance(own, int) and not isinstance(own, bool) else loaded.get(name)
        warm = self.warm_since.get(req.model)
        facts = RequestFacts(
            model=req.model,
            client=req.client,
            num_ctx=num_ctx,
            options=req.options,
            previous=req.previous,
            warm=warm is not None and req.admitted_at is not None and warm <= req.admitted_at,
            still_loaded=self.upstream_checked_at is None or name in loaded,
            first_byte_ms=None if first_byte_s is None else first_byte_s * 1000.0,
            streamed_tokens=req.tally.tokens,
            final=final,
        )
        found = final_warnings(
            facts,
            reload_warn_ms=self.reload_warn_ms,
            upstream_queue_warn_ms=self.upstream_queue_warn_ms,
        )
        for kind, example in found:
            self._warn(kind, example)
        self.warm_since.setdefault(req.model, self.clock())
