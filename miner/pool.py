"""A generic worker pool: N tasks draining a bounded queue; knows nothing about HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["run_pool"]

J = TypeVar("J")
R = TypeVar("R")

_DONE = object()


async def run_pool(
    jobs: Iterable[J], handle: Callable[[J], Awaitable[R]], *, workers: int = 12
) -> list[R]:
    """Run `handle` on every job with at most `workers` running at once.

    Returns one outcome per job, in job order. `handle` should turn its own failures into
    outcomes; if it raises, the pool cancels the other workers and the error propagates
    (inside an ExceptionGroup). Cancelling the caller cancels every running `handle`.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    items = list(jobs)
    results: dict[int, R] = {}
    queue: asyncio.Queue[tuple[int, J] | object] = asyncio.Queue(maxsize=workers * 2)
    count = min(workers, len(items))

    async def feed() -> None:
        for pair in enumerate(items):
            await queue.put(pair)
        for _ in range(count):
            await queue.put(_DONE)

    async def work() -> None:
        while True:
            entry = await queue.get()
            if entry is _DONE:
                return
            index, job = entry  # type: ignore[misc]
            results[index] = await handle(job)

    if count:
        async with asyncio.TaskGroup() as group:
            group.create_task(feed())
            for _ in range(count):
                group.create_task(work())
    return [results[i] for i in range(len(items))]
