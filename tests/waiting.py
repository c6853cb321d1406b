"""Waiting in tests for a condition the code under test makes true, never for a while.

Every polling loop in tests/ goes through `wait_for`: it returns the first truthy value of
its predicate and, when the condition never comes, fails with an AssertionError that says
what was awaited (a loop that silently falls through makes the next assertion lie).
The timeout only bounds a failing test; a passing test never waits for it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

__all__ = ["PATIENCE_S", "wait_for"]

T = TypeVar("T")

# The usual bound for a condition that comes in milliseconds on an idle machine.
PATIENCE_S = 30.0


@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float,  # noqa: ASYNC109 (a bound that fails naming `what`, not a cancel scope)
    what: str | Callable[[], str],
    interval: float = ...,
) -> T: ...


@overload
async def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float,  # noqa: ASYNC109 (a bound that fails naming `what`, not a cancel scope)
    what: str | Callable[[], str],
    interval: float = ...,
) -> T: ...


async def wait_for(
    predicate: Callable[[], object],
    *,
    timeout: float,  # noqa: ASYNC109 (a bound that fails naming `what`, not a cancel scope)
    what: str | Callable[[], str],
    interval: float = 0.01,
) -> object:
    """Call `predicate` (sync or async) until it returns something truthy, and return that.

    Between calls the event loop runs for `interval` seconds. After `timeout` seconds
    without success, raise AssertionError naming `what` (a string, or a function that
    describes the state at the moment of failure) and the last value seen.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {described} (last: {result!r:.300})"
            )
        await asyncio.sleep(interval)
