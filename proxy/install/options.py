"""What `lanes install` accepts: Ollama keep-alive durations, lane counts and queue bounds."""

from __future__ import annotations

import re

__all__ = ["MAX_LANES", "keep_alive_duration", "lane_count", "queue_bound"]

MAX_LANES = 256
_GO_DURATION = re.compile(r"[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+")


def keep_alive_duration(value: str) -> str:
    """An Ollama keep-alive: a Go duration ("10m", "1h30m", "-1m") or whole seconds ("300")."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text) or _GO_DURATION.fullmatch(text):
        return text
    raise ValueError(f"{value!r} is not a duration such as 5m, 1h, -1 or 300")


def lane_count(value: str) -> int:
    """OLLAMA_NUM_PARALLEL and the proxy's lanes: a whole number from 1 to 256."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_LANES:
        raise ValueError(f"{value!r} is not a whole number from 1 to {MAX_LANES}")
    return number


def queue_bound(value: str) -> int:
    """OLLAMA_MAX_QUEUE: a whole number above 0."""
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{value!r} is not a whole number above 0")
    return int(value)
