"""`lanes serve` as a real child process, for the tests that signal it (`lanes tune --apply`)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.machine import processes
from tests.waiting import PATIENCE_S

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
    `serve_started` log line (JSON on stderr, which is not a terminal). A thread copies
    stderr to `log`.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--config", str(config)],
        cwd=processes.REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    addresses: list[str] = []
    ready = threading.Event()

    def copy_stderr() -> None:
        assert proc.stderr is not None
        with log.open("w") as out:
            for line in proc.stderr:
                out.write(line)
                out.flush()
                address = _started(line)
                if address is not None and not addresses:
                    addresses.append(address)
                    ready.set()
        ready.set()  # the process ended

    reader = threading.Thread(target=copy_stderr, daemon=True)
    reader.start()
    try:
        if not ready.wait(PATIENCE_S) or not addresses:
            pytest.fail("lanes serve did not start: " + log.read_text())
        yield ServeProcess(f"http://{addresses[0]}", proc.pid)
    finally:
        processes.stop(proc)
        reader.join(timeout=10)
