"""The simulator's state records: tickets, runners, load options and counters (pure data)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from proxy.simulator.catalog import ModelSpec

__all__ = ["Counters", "LoadOptions", "MaxQueueExceeded", "Phase", "Runner", "Ticket"]


class MaxQueueExceeded(Exception):
    """The scheduler queue holds `max_queue` tickets already."""


class Phase(Enum):
    """Where a ticket is."""

    SCHEDULING = "scheduling"  # in the scheduler queue (load, reload or eviction ahead)
    WAITING_SLOT = "waiting_slot"  # attached to a runner, waiting in its slot FIFO
    RUNNING = "running"  # holding a slot (or done at once for a load-only ticket)
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class LoadOptions:
    """The load-time options that force a reload when they change (§6.5)."""

    num_ctx: int
    num_batch: int = 512
    num_thread: int = 0
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_gpu: int = -1

    @classmethod
    def from_options(cls, options: Mapping[str, Any], spec: ModelSpec, default_ctx: int) -> Any:
        """Effective options of a request: num_ctx capped at the model's context, at least 4."""
        ctx = options.get("num_ctx")
        num_ctx = int(ctx) if isinstance(ctx, int | float) and ctx > 0 else default_ctx
        return cls(
            num_ctx=max(4, min(num_ctx, spec.context_length)),
            num_batch=int(options.get("num_batch") or 512),
            num_thread=int(options.get("num_thread") or 0),
            main_gpu=int(options.get("main_gpu") or 0),
            use_mmap=options.get("use_mmap"),
            num_gpu=int(options.get("num_gpu", -1)),
        )

    def needs_reload(self, request: LoadOptions) -> bool:
        """True when a runner loaded with `self` cannot serve `request`."""
        same = (self.num_ctx, self.num_batch, self.num_thread, self.main_gpu) == (
            request.num_ctx,
            request.num_batch,
            request.num_thread,
            request.main_gpu,
        )
        mmap_differs = request.use_mmap is not None and request.use_mmap != self.use_mmap
        gpu_differs = request.num_gpu >= 0 and request.num_gpu != self.num_gpu
        return not same or mmap_differs or gpu_differs


@dataclass(eq=False)
class Ticket:
    """One inference request (or a load-only request when `needs_slot` is False)."""

    id: int
    model: str
    options: LoadOptions
    submitted_at: float
    keep_alive_s: float | None = None
    needs_slot: bool = True
    tag: str = ""
    phase: Phase = Phase.SCHEDULING
    runner: Runner | None = None
    assigned_at: float | None = None
    started_at: float | None = None
    decoding: bool = False
    loaded: bool = False  # this ticket waited for a load of its runner
    slot_waited: bool = False  # it found every slot of its runner busy


@dataclass(eq=False)
class Runner:
    """One loaded (or loading) model with its slots."""

    spec: ModelSpec
    slots: int
    options: LoadOptions
    keep_alive_s: float
    ready_at: float
    expires_at: float
    loading_for: Ticket | None = None
    draining: bool = False
    evicting: bool = False
    running: list[Ticket] = field(default_factory=list)
    waiters: deque[Ticket] = field(default_factory=deque)

    @property
    def loading(self) -> bool:
        return self.loading_for is not None

    @property
    def idle(self) -> bool:
        return not self.running and not self.waiters

    def decoding(self) -> int:
        return sum(1 for t in self.running if t.decoding)

    def grant(self, now: float) -> list[Ticket]:
        """Move waiters into free slots (none while loading); returns the tickets started."""
        started: list[Ticket] = []
        while self.waiters and len(self.running) < self.slots and not self.loading:
            ticket = self.waiters.popleft()
            ticket.phase = Phase.RUNNING
            ticket.started_at = now
            self.running.append(ticket)
            started.append(ticket)
        return started

    def mark_slot_waits(self) -> int:
        """Tickets still waiting right after a grant found every slot busy: mark each once.

        Marked ones form the head of the FIFO (tickets attach at its tail), so the walk from
        the tail stops at the first one already marked. Returns how many were marked now."""
        marked = 0
        if self.loading:
            return marked
        for ticket in reversed(self.waiters):
            if ticket.slot_waited:
                break
            ticket.slot_waited = True
            marked += 1
        return marked

    def detach(self, ticket: Ticket) -> None:
        """Take `ticket` out of its slot or the slot FIFO, wherever it is."""
        if ticket in self.running:
            self.running.remove(ticket)
        elif ticket in self.waiters:
            self.waiters.remove(ticket)

    def eviction_order(self) -> tuple[float, str]:
        """Shortest keep-alive first (negative = forever = last), then by name."""
        keep = self.keep_alive_s
        return (float("inf") if keep < 0 else keep, self.spec.name)


@dataclass
class Counters:
    """Per-model counters shown by /_sim/stats."""

    max_in_flight: int = 0
    requests: int = 0
    slot_waits: int = 0  # requests that found every slot busy and waited in the slot FIFO
    completed: int = 0
    cancellations: int = 0
    loads: int = 0
    reloads: int = 0
    evictions: int = 0
    unloads: int = 0
    rejected: int = 0
    failed: int = 0
    errors_injected: int = 0
