"""`lanes serve` as a real child process, for the tests that signal it (`lanes tune --apply`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.machine import processes

__all__ = ["ServeProcess", "serve_process"]


@dataclass(frozen=True)
class ServeProcess:
    """A running `lanes serve` process: its URL and pid."""

    url: str
    pid: int


def _started(line: str) -> str | None:
    """The address of a `serve_started` JSON log line; None for any other line."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") != "serve_started":
        return None
    return str(event["address"])


@contextmanager
def serve_process(config: Path, env: dict[str, str], log: Path) -> Iterator[ServeProcess]:
    """`python -m proxy serve --config <config>` with `env`, handed over once it listens.

    The config file should listen on port 0: the process names its address in its
    `serve_started` log line (JSON on stderr, which is not a terminal), copied to `log`.
    """
    args = ["serve", "--config", str(config)]
    with processes.announced_process(args, env, log, _started) as (address, pid):
        yield ServeProcess(f"http://{address}", pid)
