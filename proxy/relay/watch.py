"""The one background reader of every host's state: health, placement, the lane map, stats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from proxy.relay.gate import LaneGate
from proxy.relay.mapper import LaneMapper
from proxy.relay.router import Router
from proxy.stats.ledger import Ledger

__all__ = ["TICK_S", "watch"]

log = structlog.get_logger("proxy.watch")
TICK_S = 0.25  # how often breaker timeouts are applied and the queue is checked for idle lanes


async def _poll(
    router: Router, mapper: LaneMapper, ledger: Ledger, clock: Callable[[], float]
) -> None:
    names = list(router.readers)
    states = await asyncio.gather(*(router.readers[n].state() for n in names))
    now = clock()
    for name, state in zip(names, states, strict=True):
        router.host_seen(name, state)
        ledger.upstream_polled(
            name,
            reachable=state.reachable,
            version=state.version,
            loaded=state.loaded,
            now=now,
        )
    await asyncio.gather(*(mapper.host_seen(n, s) for n, s in zip(names, states, strict=True)))


async def watch(
    router: Router,
    mapper: LaneMapper,
    gate: LaneGate,
    ledger: Ledger,
    *,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Read every host each `interval_s`; apply breakers and check the queue every tick.

    Runs until cancelled; a failure in one round is logged and the next round runs.
    """
    next_poll = 0.0
    while True:
        now = clock()
        try:
            if now >= next_poll:
                next_poll = now + interval_s
                await _poll(router, mapper, ledger, clock)
            router.apply_breakers()
            ledger.observe_queue(gate.snapshot(), clock())
        except Exception:
            log.exception("watch_round_failed")
        await asyncio.sleep(TICK_S)
