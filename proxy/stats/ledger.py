"""The Ledger: the write side of statistics, which the request path and the poll report to."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from proxy.lanes.queue import QueueSnapshot
from proxy.lanes.snapshot import ModelSnapshot
from proxy.ollama import LoadedModel
from proxy.stats.chunks import FinalMetrics
from proxy.stats.evidence import EvidenceLog
from proxy.stats.inspection import inspect, listed, warning_check, whole
from proxy.stats.recorder import Outcome
from proxy.stats.records import Finished, HostSeen, Keyed, Request, guarded
from proxy.stats.warnings import LOAD_OPTIONS, IdleWatch, WarningBook
from proxy.stats.windows import SampleWindow, SecondBuckets

__all__ = ["OTHER", "Ledger"]

OTHER = "(other)"
# Per-second sums: output tokens, Ollama's prefill and decode, busy lane-seconds; then, for the
# verdict, seconds with work waiting, requests received and completed, reload and slot waits,
# and the evidence events of each kind.
_FIELDS = ("output", "prefill_tokens", "prefill_ns", "decode_tokens", "decode_ns", "busy")
_VERDICT_FIELDS = ("waiting", "received", "completed", "reload_ns", "upstream_wait_ns")
_EVENT_FIELDS = ("truncated", "reloaded", "queued_upstream")  # `counter` of each evidence event
_NOTHING_READ = FinalMetrics()


class Ledger:
    """Implements `Recorder`: O(1) per event and per chunk, bounded memory.

    It only records; `proxy.stats.view.build_view` reads it without changing anything.
    """

    def __init__(
        self,
        *,
        hosts: Mapping[str, str],
        lanes: int = 1,
        max_queue: int = 0,
        reload_warn_ms: float = 500.0,
        upstream_queue_warn_ms: float = 500.0,
        max_keys: int = 64,
        w_in: float = 1.0,
        w_out: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        knees: Mapping[str, int | None] | None = None,
        verdict_window_s: float = 60.0,
    ) -> None:
        self.clock = clock
        self.lanes = lanes  # used by the view when it is given no queue snapshot
        self.max_queue = max_queue
        self.reload_warn_ms = reload_warn_ms
        self.upstream_queue_warn_ms = upstream_queue_warn_ms
        self.max_keys = max_keys
        self.w_in, self.w_out = w_in, w_out  # the weights of served tokens (queue rule 4)
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
        self.buckets = SecondBuckets((*_FIELDS, *_VERDICT_FIELDS, *_EVENT_FIELDS))
        self.busy = 0
        self.busy_since = self.started_at
        self.prompt_tokens = 0
        self.eval_tokens = 0
        self.clients: dict[str, Keyed] = {}
        self.models: dict[str, Keyed] = {}
        self.last_options: dict[tuple[str, str], dict[str, object]] = {}  # (host, model)
        self.warm_since: dict[tuple[str, str], float] = {}  # (host, model)
        self.warnings = WarningBook()
        self.idle: dict[str, IdleWatch] = {}  # per host
        self.queue_checked_at: float | None = None  # the latest observe_queue
        self.lane_rows: dict[tuple[str, str], ModelSnapshot] = {}  # (host, model) -> its lanes
        self.hosts = {name: HostSeen(url) for name, url in hosts.items()}
        # For the verdict: the last `verdict_window_s`, the knee `lanes tune` measured per host,
        # when some request waited, when each (host, model) last took a lane, named events.
        self.verdict_window_s = verdict_window_s
        self.knees: dict[str, int | None] = dict(knees or {})
        self.queued = 0
        self.queued_since = self.started_at
        self.taken_at: dict[tuple[str, str], float] = {}  # (host, model as Ollama lists it)
        self.last_client: dict[tuple[str, str], str] = {}  # (host, model)
        self.evidence = EvidenceLog()

    @guarded
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
        client = self._key(self.clients, client)
        model = self._key(self.models, model)
        self.requests[rid] = Request(client, priority, model, route, now, prompt_chars=prompt_chars)
        self.buckets.add(now, "received", 1)
        self._queued_change(+1, now)
        self.counts["received"] += 1
        self.clients[client].requests += 1
        self.models[model].requests += 1
        self.queued_by_class[priority] += 1
        self.queued_by_client[client] += 1

    @guarded
    def request_admitted(
        self, rid: int, *, host: str, lane: int, options: dict[str, object], now: float
    ) -> None:
        req = self.requests.get(rid)
        if req is None:
            return
        req.host, req.lane = host, lane
        if req.admitted_at is not None:
            return  # a retry's new lane: the request keeps its wait and its busy count
        self._unqueue(req, now)
        req.admitted_at = now
        wait = now - req.received_at
        self.waits.add(now, wait * 1000.0)
        for row in (self.clients[req.client], self.models[req.model]):
            row.wait_sum_s += wait
            row.waits += 1
        req.options = {k: options[k] for k in LOAD_OPTIONS if k in options}
        req.previous = self.last_options.get((host, req.model))
        self.last_options[(host, req.model)] = req.options
        req.previous_client = self.last_client.get((host, req.model))
        self.last_client[(host, req.model)] = req.client
        req.num_predict = whole(options.get("num_predict"))
        self.taken_at[(host, listed(req.model))] = now
        self.running[rid] = req
        self.counts["admitted"] += 1
        self._busy_change(+1, now)

    @guarded
    def upstream_headers(self, rid: int, *, status: int, now: float) -> None:
        req = self.requests.get(rid)
        if req is not None:
            req.status = status

    @guarded
    def chunk_relayed(self, rid: int, tokens: int, now: float) -> None:
        req = self.requests.get(rid)
        if req is None:
            return
        if req.first_byte_at is None:
            req.first_byte_at = now
        if tokens:
            req.streamed += tokens
            self.buckets.add(now, "output", tokens)

    @guarded
    def request_finished(
        self, rid: int, *, outcome: Outcome, now: float, answer: FinalMetrics | None = None
    ) -> None:
        req = self.requests.pop(rid, None)
        if req is None:
            return
        if req.admitted_at is None:
            self._unqueue(req, now)
            self._count_unadmitted(outcome)
            return
        if self.running.pop(rid, None) is not None:
            self._busy_change(-1, now)
        final = _NOTHING_READ if answer is None else answer
        self._count_admitted(req, outcome, final, now)
        first_byte_s = None
        if req.first_byte_at is not None:
            first_byte_s = max(0.0, req.first_byte_at - req.admitted_at)
            self.first_bytes.add(now, first_byte_s * 1000.0)
        self._count_tokens(req, final, now)
        if outcome.kind == "completed" and final.total_ns is not None:
            self._check_warnings(req, final, first_byte_s, now)
        done = Finished(
            req.client,
            req.priority,
            req.model,
            req.route,
            outcome.kind,
            req.admitted_at - req.received_at,
            first_byte_s,
            now - req.received_at,
        )
        for observer in self.observers:
            observer(done)

    @guarded
    def upstream_polled(
        self,
        name: str,
        *,
        reachable: bool,
        version: str | None,
        loaded: Sequence[LoadedModel] | None,
        now: float,
    ) -> None:
        """The background poll's latest look at one host's `/api/version` and `/api/ps`."""
        seen = self.hosts.get(name)
        if seen is None:
            return
        seen.reachable, seen.checked_at = reachable, now
        if version is not None:
            seen.version = version
        if loaded is not None:
            seen.loaded = list(loaded)

    @guarded
    def observe_queue(self, queue: QueueSnapshot, now: float) -> None:
        """Check each host for free lanes next to work it could run (a bug if it persists)."""
        self.queue_checked_at = now
        several = len(queue.hosts) > 1
        self.lane_rows = {(h.name, m.name): m for h in queue.hosts for m in h.models}
        for host in queue.hosts:
            stuck = host.healthy and host.busy < host.lanes and host.runnable > 0
            watch = self.idle.setdefault(host.name, IdleWatch())
            if watch.observe(stuck=stuck, now=now):
                where = f" on {host.name}" if several else ""
                self._warn(
                    "lanes_idle_with_queue",
                    f"{host.busy} of {host.lanes} lanes busy{where} while {host.eligible} "
                    f"requests it could run waited for over {watch.grace_s:g} s",
                )

    def _count_unadmitted(self, outcome: Outcome) -> None:
        if outcome.kind == "cancelled":
            self.counts["cancelled_while_queued"] += 1
        else:
            self.counts["rejected"] += 1
            self._count_reason(self.rejected_by_reason, outcome.reason or outcome.kind)

    def _count_admitted(
        self, req: Request, outcome: Outcome, final: FinalMetrics, now: float
    ) -> None:
        if outcome.kind == "completed":
            self.counts["completed"] += 1
            self.buckets.add(now, "completed", 1)
            self.totals.add(now, (now - req.received_at) * 1000.0)
        elif outcome.kind == "cancelled":
            self.counts["cancelled_while_running"] += 1
            if outcome.reason == "client_stalled":
                self.counts["client_stalled"] += 1
        else:
            self.counts["failed"] += 1
            self._count_reason(self.failed_by_reason, outcome.reason or outcome.kind)
        upstream_failed = outcome.kind == "failed" and (
            req.status is None or (outcome.reason or "").startswith("upstream")
        )
        if final.error or (req.status or 0) >= 500 or upstream_failed:
            self.counts["upstream_errors"] += 1

    def _key(self, table: dict[str, Keyed], name: str) -> str:
        if name not in table:
            if len(table) >= self.max_keys:
                name = OTHER
            table.setdefault(name, Keyed())
        return name

    def _count_reason(self, table: Counter[str], reason: str) -> None:
        table[reason if reason in table or len(table) < self.max_keys else OTHER] += 1

    def _unqueue(self, req: Request, now: float) -> None:
        self._queued_change(-1, now)
        pairs = ((self.queued_by_class, req.priority), (self.queued_by_client, req.client))
        for table, key in pairs:
            table[key] -= 1
            if table[key] <= 0:
                del table[key]

    def _queued_change(self, delta: int, now: float) -> None:
        if self.queued > 0:
            self.buckets.add_span(self.queued_since, now, "waiting", 1.0)
        self.queued = max(0, self.queued + delta)
        self.queued_since = now

    def _busy_change(self, delta: int, now: float) -> None:
        if self.busy > 0:
            self.buckets.add_span(self.busy_since, now, "busy", self.busy)
        self.busy = max(0, self.busy + delta)
        self.busy_since = now

    def _count_tokens(self, req: Request, final: FinalMetrics, now: float) -> None:
        prompt = final.prompt_tokens or 0
        output = final.eval_tokens if final.eval_tokens is not None else req.streamed
        if output > req.streamed:
            self.buckets.add(now, "output", output - req.streamed)
        self.prompt_tokens += prompt
        self.eval_tokens += output
        for row in (self.clients[req.client], self.models[req.model]):
            row.prompt_tokens += prompt
            row.eval_tokens += output
        self.clients[req.client].serve(now, self.w_in * prompt + self.w_out * output)
        if final.prompt_eval_ns and final.prompt_tokens:
            self.buckets.add(now, "prefill_tokens", final.prompt_tokens)
            self.buckets.add(now, "prefill_ns", final.prompt_eval_ns)
        if final.eval_ns and final.eval_tokens:
            self.buckets.add(now, "decode_tokens", final.eval_tokens)
            self.buckets.add(now, "decode_ns", final.eval_ns)

    def _warn(self, kind: str, example: str) -> None:
        self.warnings.add(kind, example, round(self.clock() + self.wall_offset, 3))

    def _check_warnings(
        self, req: Request, final: FinalMetrics, first_byte_s: float | None, now: float
    ) -> None:
        check = warning_check(
            req,
            final,
            first_byte_s,
            seen=self.hosts.get(req.host),
            several=len(self.hosts) > 1,
            warm_at=self.warm_since.get((req.host, req.model)),
            row=self.lane_rows.get((req.host, listed(req.model))),
        )
        found = inspect(req, check, now, self.reload_warn_ms, self.upstream_queue_warn_ms)
        for kind, example in found.warnings:
            self._warn(kind, example)
        for event in found.events:
            self.evidence.add(event)
            self.buckets.add(now, event.counter, 1)
        self.buckets.add(now, "reload_ns", found.reload_ns)
        self.buckets.add(now, "upstream_wait_ns", found.upstream_wait_ns)
        self.warm_since.setdefault((req.host, req.model), self.clock())
