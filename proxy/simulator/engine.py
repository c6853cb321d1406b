"""The asyncio side of the simulation: waits for slots and paces prefill and decode in real time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

from proxy.simulator.catalog import ModelSpec
from proxy.simulator.faults import FaultPlan, plan_faults
from proxy.simulator.model import LoadOptions, Phase, Simulation, Ticket
from proxy.simulator.settings import SimulatorSettings

__all__ = ["Engine"]

# Sleeps shorter than this are skipped; decode batches tokens so one sleep is at least _STEP_S.
_MIN_SLEEP_S = 0.001
_STEP_S = 0.005
_POLL_S = 0.25


class Engine:
    """Owns the Simulation; every mutation is followed by a pump that wakes whoever was granted."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.sim = Simulation(
            settings.models,
            slots={m.name: settings.slots_for(m) for m in settings.models},
            max_queue=settings.max_queue,
            max_loaded_models=settings.max_loaded_models,
            load_seconds=settings.load_seconds,
            default_num_ctx=settings.default_num_ctx,
            keep_alive_s=settings.keep_alive_s,
        )
        self.rng = random.Random(settings.seed)
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def options(self, spec: ModelSpec, options: dict[str, Any]) -> LoadOptions:
        return self.sim.options_for(spec, options)

    def faults(self, spec: ModelSpec) -> FaultPlan:
        return plan_faults(self.settings, spec, self.rng)

    def pump(self) -> None:
        """Advance the simulation to now, wake granted tickets, and arm the next timer."""
        loop = asyncio.get_running_loop()
        for ticket in self.sim.advance(loop.time()):
            waiter = self._waiters.pop(ticket.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.sim.next_deadline()
        if deadline is not None:
            self._timer = loop.call_at(deadline, self.pump)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def acquire(
        self,
        spec: ModelSpec,
        options: LoadOptions,
        *,
        keep_alive_s: float | None = None,
        needs_slot: bool = True,
        tag: str = "",
        gone: Callable[[], bool] | None = None,
    ) -> Ticket:
        """Submit and wait until the ticket holds a slot (or is loaded, when it needs none).

        Raises MaxQueueExceeded at once. If the caller is cancelled or `gone()` turns true while
        waiting, the ticket is cancelled and the exception propagates.
        """
        ticket = self.sim.submit(
            spec.name,
            options,
            self.now(),
            keep_alive_s=keep_alive_s,
            needs_slot=needs_slot,
            tag=tag,
        )
        self.pump()
        if ticket.phase in (Phase.RUNNING, Phase.DONE):
            return ticket
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[ticket.id] = waiter
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=_POLL_S)
                if done:
                    return ticket
                if gone is not None and gone():
                    raise ConnectionResetError("client went away while queued")
        except BaseException:
            self._waiters.pop(ticket.id, None)
            self.cancel(ticket)
            raise

    def finish(self, ticket: Ticket) -> None:
        self.sim.finish(ticket, self.now())
        self.pump()

    def cancel(self, ticket: Ticket) -> None:
        self.sim.cancel(ticket, self.now())
        self.pump()

    def fail(self, ticket: Ticket) -> None:
        """An injected failure ended the ticket: free its slot without counting a completion."""
        self.sim.fail(ticket, self.now())
        self.pump()

    async def sleep(self, seconds: float) -> None:
        if seconds >= _MIN_SLEEP_S:
            await asyncio.sleep(seconds)

    async def prefill(self, ticket: Ticket, tokens: int) -> float:
        """Evaluate `tokens` prompt tokens; returns the simulated duration in seconds."""
        seconds = tokens / self.settings.prefill_tps
        await self.sleep(seconds)
        self.sim.set_decoding(ticket)
        return seconds

    def token_seconds(self, ticket: Ticket) -> float:
        """Seconds per token for one request while k decode together: k / (tps * k**alpha)."""
        k = self.sim.decoding(ticket)
        return float(k / (self.settings.decode_tps * k**self.settings.batch_alpha))

    async def decode(self, ticket: Ticket, pieces: list[str]) -> AsyncIterator[list[str]]:
        """Yield the pieces in batches at the simulated pace (rate recomputed every batch)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        index = 0
        while index < len(pieces):
            per_token = self.token_seconds(ticket)
            batch = min(len(pieces) - index, max(1, int(_STEP_S / per_token)))
            due = max(due, loop.time() - per_token) + batch * per_token
            await self.sleep(due - loop.time())
            yield pieces[index : index + batch]
            index += batch

    def stats(self) -> dict[str, Any]:
        """The /_sim/stats document."""
        sim = self.sim
        models = {
            name: {
                "max_in_flight": c.max_in_flight,
                "in_flight": sim.in_flight(name),
                "queued": sim.queued(name),
                "requests": c.requests,
                "slot_waits": c.slot_waits,
                "completed": c.completed,
                "cancellations": c.cancellations,
                "loads": c.loads,
                "reloads": c.reloads,
                "evictions": c.evictions,
                "errors_injected": c.errors_injected,
                "failed": c.failed,
                "rejected": c.rejected,
                "unloads": c.unloads,
                "loaded": name in sim.runners,
                "slots": sim.slots.get(name, 1),
            }
            for name, c in sim.counters.items()
        }
        return {
            "models": models,
            "requests_total": sim.requests_total,
            "max_in_flight_total": sim.max_in_flight_total,
            "slot_waits_total": sim.slot_waits_total,
            "in_flight_total": sum(len(r.running) for r in sim.runners.values()),
            "scheduler_queue": sum(1 for t in sim.queue if t.phase is Phase.SCHEDULING),
        }
