"""How much work a call does, counted instead of timed.

A wall-clock bound in a test fails on a busy machine and says little on an idle one.
The number of Python lines a piece of code executes is the same on both, so tests
compare it between a small and a large input to show that the work is bounded (or
linear). Timings belong in bench/.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

__all__ = ["python_lines"]

T = TypeVar("T")

_Tracer = Callable[[FrameType, str, Any], Any]


def python_lines(fn: Callable[[], T]) -> tuple[T, int]:
    """Run `fn()`; return its result and how many lines of Python it executed.

    Every line run counts, each pass of a loop or comprehension too (the tracer's "line"
    events); work done inside C does not. For the same input the count is the same on
    every run, however busy the machine.
    """
    lines = 0

    def local(frame: FrameType, event: str, arg: Any) -> _Tracer:
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def enter(frame: FrameType, event: str, arg: Any) -> _Tracer:
        return local

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        result = fn()
    finally:
        sys.settrace(previous)
    return result, lines
