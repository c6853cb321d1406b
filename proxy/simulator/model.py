"""Pure simulated Ollama scheduler: scheduler queue, per-model slots, load/reload/evict, keep-alive.

Rules (ollama-api.md §6), all decided here and nowhere else; every call takes `now`:

1. A request for a loaded, compatible, non-draining runner attaches at once (the fast path).
   Anything else goes to the scheduler queue, bounded by `max_queue`; when it is full `submit`
   raises MaxQueueExceeded and nothing changes.
2. The scheduler queue is FIFO and head-of-line: its head loads, reloads or waits for an eviction
   while everything behind it waits. A cancelled ticket keeps its place until it reaches the head.
3. A runner whose load options differ from the head's drains: it takes no new tickets, finishes
   the ones attached to it (running and waiting for a slot), then unloads and reloads.
4. Each runner has `slots` slots; attached tickets wait for one in an unbounded FIFO. A ticket
   that finds every slot busy when it attaches counts one `slot_waits` for its model.
5. When `max_loaded_models` runners exist, the first idle one (by keep-alive, then name) is
   evicted; if none is idle, the one with the shortest keep-alive drains first.
6. An idle runner unloads `keep_alive` seconds after its last ticket left (negative: never).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from proxy.simulator.catalog import ModelSpec, canonical_name
from proxy.simulator.state import Counters, LoadOptions, MaxQueueExceeded, Phase, Runner, Ticket

__all__ = ["Counters", "LoadOptions", "MaxQueueExceeded", "Phase", "Runner", "Simulation", "Ticket"]


class Simulation:
    """The scheduler state machine. Mutators change state; `advance(now)` moves it forward."""

    def __init__(
        self,
        models: Iterable[ModelSpec],
        *,
        slots: Mapping[str, int],
        max_queue: int,
        max_loaded_models: int,
        load_seconds: float,
        default_num_ctx: int,
        keep_alive_s: float,
    ) -> None:
        self.specs = {m.name: m for m in models}
        self.slots = dict(slots)
        self.max_queue = max_queue
        self.max_loaded_models = max_loaded_models
        self.load_seconds = load_seconds
        self.default_num_ctx = default_num_ctx
        self.keep_alive_s = keep_alive_s
        self.queue: deque[Ticket] = deque()
        self.runners: dict[str, Runner] = {}
        self.counters = {name: Counters() for name in self.specs}
        self.requests_total = 0
        self.max_in_flight_total = 0
        self.slot_waits_total = 0
        self.events: deque[dict[str, Any]] = deque(maxlen=2000)
        self._next_id = 0
        self._seq = 0
        self._changed: list[Ticket] = []

    # -- lookups -----------------------------------------------------------------------------

    def resolve(self, name: str) -> ModelSpec | None:
        """The spec for a requested model name, tag optional."""
        return self.specs.get(canonical_name(name)) if name else None

    def options_for(self, spec: ModelSpec, options: Mapping[str, Any]) -> LoadOptions:
        """The effective load options of a request for `spec`."""
        result: LoadOptions = LoadOptions.from_options(options, spec, self.default_num_ctx)
        return result

    def in_flight(self, model: str) -> int:
        runner = self.runners.get(model)
        return len(runner.running) if runner else 0

    def queued(self, model: str) -> int:
        runner = self.runners.get(model)
        waiting = len(runner.waiters) if runner else 0
        return waiting + sum(
            1 for t in self.queue if t.model == model and t.phase is Phase.SCHEDULING
        )

    def decoding(self, ticket: Ticket) -> int:
        """How many tickets decode on `ticket`'s runner right now (at least 1)."""
        return max(1, ticket.runner.decoding()) if ticket.runner else 1

    # -- mutators ----------------------------------------------------------------------------

    def submit(
        self,
        model: str,
        options: LoadOptions,
        now: float,
        *,
        keep_alive_s: float | None = None,
        needs_slot: bool = True,
        tag: str = "",
    ) -> Ticket:
        """Admit a request for `model` (a canonical name); raises MaxQueueExceeded or KeyError."""
        spec = self.specs[model]
        runner = self.runners.get(model)
        fast = (
            runner is not None
            and not runner.loading
            and not runner.draining
            and not runner.options.needs_reload(options)
        )
        if not fast and len(self.queue) >= self.max_queue:
            self.counters[spec.name].requests += 1
            self.counters[spec.name].rejected += 1
            self.requests_total += 1
            raise MaxQueueExceeded(model)
        self._next_id += 1
        ticket = Ticket(self._next_id, model, options, now, keep_alive_s, needs_slot, tag)
        self.counters[model].requests += 1
        self.requests_total += 1
        if fast and runner is not None:
            self._attach(ticket, runner, now)
        else:
            self.queue.append(ticket)
        self._step(now)
        return ticket

    def set_decoding(self, ticket: Ticket) -> None:
        """The ticket finished prefill and decodes from now on."""
        if ticket.phase is Phase.RUNNING:
            ticket.decoding = True

    def finish(self, ticket: Ticket, now: float) -> None:
        """The ticket's work is done; its slot is free. Idempotent."""
        if ticket.phase is not Phase.RUNNING:
            return
        ticket.phase = Phase.DONE
        self.counters[ticket.model].completed += 1
        self._log("finish", ticket)
        self._detach(ticket, now)
        self._step(now)

    def fail(self, ticket: Ticket, now: float) -> None:
        """An injected fault ended the ticket while it held a slot. Idempotent."""
        if ticket.phase is not Phase.RUNNING:
            return
        ticket.phase = Phase.DONE
        self.counters[ticket.model].failed += 1
        self._log("fail", ticket)
        self._detach(ticket, now)
        self._step(now)

    def cancel(self, ticket: Ticket, now: float) -> None:
        """The client left: drop the ticket wherever it is. Idempotent."""
        phase = ticket.phase
        if phase in (Phase.DONE, Phase.CANCELLED):
            return
        ticket.phase = Phase.CANCELLED
        self.counters[ticket.model].cancellations += 1
        self._log("cancel", ticket)
        runner = self.runners.get(ticket.model)
        if phase is Phase.SCHEDULING:
            if runner is not None and runner.loading_for is ticket:
                del self.runners[ticket.model]  # load aborted; the next ticket loads afresh
        else:
            self._detach(ticket, now)
        self._step(now)

    def unload(self, model: str, now: float) -> None:
        """keep_alive 0 with an empty prompt: unload now, or when the runner goes idle."""
        runner = self.runners.get(model)
        if runner is None:
            return
        runner.keep_alive_s = 0.0
        if runner.idle and not runner.loading:
            runner.expires_at = now
        self._step(now)

    def note_fault(self, model: str) -> None:
        self.counters[model].errors_injected += 1

    def reset_counters(self) -> None:
        """Zero every counter; peaks restart from the current in-flight counts."""
        self.counters = {name: Counters() for name in self.specs}
        for name, counters in self.counters.items():
            counters.max_in_flight = self.in_flight(name)
        self.requests_total = 0
        self.slot_waits_total = 0
        self.max_in_flight_total = sum(len(r.running) for r in self.runners.values())
        self.events.clear()

    # -- time --------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Ticket]:
        """Apply everything due at `now`; returns the tickets that got a runner or a slot
        since the last call (mutators apply what they cause at once, too)."""
        self._step(now)
        changed, self._changed = self._changed, []
        return changed

    def next_deadline(self) -> float | None:
        """When `advance` next has something to do on its own (a load or an expiry)."""
        times = [r.ready_at for r in self.runners.values() if r.loading]
        times += [
            r.expires_at
            for r in self.runners.values()
            if not r.loading and r.idle and r.keep_alive_s >= 0
        ]
        return min(times, default=None)

    # -- internals ---------------------------------------------------------------------------

    def _step(self, now: float) -> None:
        self._expire(now)
        for runner in self.runners.values():
            if runner.loading and runner.ready_at <= now:
                runner.loading_for = None
        self._schedule(now)
        self._grant(now)

    def _schedule(self, now: float) -> None:
        for runner in self.runners.values():
            runner.draining = runner.evicting = False  # the current head decides again
        while self.queue:
            ticket = self.queue[0]
            if ticket.phase is Phase.CANCELLED:
                self.queue.popleft()
                continue
            current = self.runners.get(ticket.model)
            if current is not None and not current.options.needs_reload(ticket.options):
                if current.loading:
                    return
                self.queue.popleft()
                self._attach(ticket, current, now)
                continue
            if current is not None:  # reload: drain, then unload when idle
                current.draining = True
                if not current.idle or current.loading:
                    return
                self._remove(current, "reload_unload")
                self.counters[ticket.model].reloads += 1
            if not self._make_room(now):
                return
            self._load(ticket, now)

    def _make_room(self, now: float) -> bool:
        if len(self.runners) < self.max_loaded_models:
            return True
        candidates = sorted(self.runners.values(), key=Runner.eviction_order)
        for runner in candidates:
            if runner.idle and not runner.loading:
                self._remove(runner, "evict")
                self.counters[runner.spec.name].evictions += 1
                return True
        victim = candidates[0]
        victim.draining = victim.evicting = True
        return False

    def _load(self, ticket: Ticket, now: float) -> None:
        spec = self.specs[ticket.model]
        keep = self.keep_alive_s if ticket.keep_alive_s is None else ticket.keep_alive_s
        runner = Runner(
            spec=spec,
            slots=self.slots.get(spec.name, 1),
            options=ticket.options,
            keep_alive_s=keep,
            ready_at=now + self.load_seconds,
            expires_at=now + max(keep, 0.0),
            loading_for=ticket,
        )
        self.runners[spec.name] = runner
        self.counters[spec.name].loads += 1
        ticket.loaded = True
        self._log("load", ticket)
        if self.load_seconds <= 0:
            runner.loading_for = None

    def _remove(self, runner: Runner, event: str) -> None:
        del self.runners[runner.spec.name]
        self.events.append({"seq": self._bump(), "event": event, "model": runner.spec.name})

    def _attach(self, ticket: Ticket, runner: Runner, now: float) -> None:
        ticket.runner = runner
        ticket.assigned_at = now
        if ticket.keep_alive_s is not None:
            runner.keep_alive_s = ticket.keep_alive_s
        if not ticket.needs_slot:
            ticket.phase = Phase.DONE
            self._changed.append(ticket)
            self._touch(runner, now)
            return
        ticket.phase = Phase.WAITING_SLOT
        runner.waiters.append(ticket)

    def _grant(self, now: float) -> None:
        for runner in self.runners.values():
            counters = self.counters[runner.spec.name]
            for ticket in runner.grant(now):
                self._changed.append(ticket)
                self._log("start", ticket)
            counters.max_in_flight = max(counters.max_in_flight, len(runner.running))
            waits = runner.mark_slot_waits()
            counters.slot_waits += waits
            self.slot_waits_total += waits
        total = sum(len(r.running) for r in self.runners.values())
        self.max_in_flight_total = max(self.max_in_flight_total, total)

    def _detach(self, ticket: Ticket, now: float) -> None:
        runner = ticket.runner
        ticket.decoding = False
        if runner is None:
            return
        runner.detach(ticket)
        self._touch(runner, now)

    def _touch(self, runner: Runner, now: float) -> None:
        if runner.idle:
            runner.expires_at = now + max(runner.keep_alive_s, 0.0)

    def _expire(self, now: float) -> None:
        for runner in list(self.runners.values()):
            if runner.loading or not runner.idle:
                continue
            if runner.keep_alive_s >= 0 and runner.expires_at <= now:
                self._remove(runner, "unload")
                self.counters[runner.spec.name].unloads += 1

    def _bump(self) -> int:
        self._seq += 1
        return self._seq

    def _log(self, event: str, ticket: Ticket) -> None:
        self.events.append(
            {"seq": self._bump(), "event": event, "model": ticket.model, "ticket": ticket.id}
            | ({"tag": ticket.tag} if ticket.tag else {})
        )
