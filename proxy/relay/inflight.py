"""InFlight: the handler tasks running now, so a drain can wait for them and then cut them."""

from __future__ import annotations

import asyncio

__all__ = ["InFlight"]


class InFlight:
    """A set of running request tasks with an event that is set while the set is empty."""

    __slots__ = ("_empty", "_tasks")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._empty = asyncio.Event()
        self._empty.set()

    def __len__(self) -> int:
        return len(self._tasks)

    def enter(self, task: asyncio.Task[object] | None) -> None:
        """A request started running in `task`."""
        if task is not None:
            self._tasks.add(task)
            self._empty.clear()

    def leave(self, task: asyncio.Task[object] | None) -> None:
        """A request's task is done with it (idempotent)."""
        if task is not None:
            self._tasks.discard(task)
        if not self._tasks:
            self._empty.set()

    async def wait_empty(self) -> None:
        """Return once no request is running."""
        await self._empty.wait()

    def cancel_all(self) -> int:
        """Cancel every running request (closing its upstream connection); returns how many."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        return len(tasks)
