"""Real child processes for the tests that read this machine: `lanes simulate`, and a sleeper.

Each is started with the environment a test gives it (OLLAMA_NUM_PARALLEL or not), and is
handed over only once it says it runs: until the exec is done, /proc/<pid>/environ holds the
forked parent's environment (or nothing).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.waiting import PATIENCE_S

__all__ = [
    "READY",
    "SimProcess",
    "announced_process",
    "child_env",
    "simulator_process",
    "sleeper",
    "stop",
]

REPO = Path(__file__).resolve().parents[2]
# `lanes simulate` prints this line on stderr once it listens.
READY = re.compile(r"^simulated Ollama \S+ on (http://\S+) ")
SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The test's environment without LANES_*, OLLAMA_* or user config files, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANES_", "OLLAMA_"))}
    return env | {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)} | extra


def stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Terminate a child, kill it if it does not end, and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass(frozen=True)
class SimProcess:
    """A running `lanes simulate` process."""

    url: str
    pid: int


@contextmanager
def announced_process(
    args: list[str], env: dict[str, str], log: Path, announce: Callable[[str], str | None]
) -> Iterator[tuple[str, int]]:
    """`python -m proxy <args>` with `env`, handed over once a stderr line announces it.

    `announce` reads each stderr line and returns what the process announced (its URL or
    address), or None; a thread copies stderr to `log`. Yields that value and the pid.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found: list[str] = []
    ready = threading.Event()

    def copy_stderr() -> None:
        assert proc.stderr is not None
        with log.open("w") as out:
            for line in proc.stderr:
                out.write(line)
                out.flush()
                value = announce(line)
                if value is not None and not found:
                    found.append(value)
                    ready.set()
        ready.set()  # the process ended

    reader = threading.Thread(target=copy_stderr, daemon=True)
    reader.start()
    try:
        if not ready.wait(PATIENCE_S) or not found:
            pytest.fail(f"proxy {args[0]} did not start: " + log.read_text())
        yield found[0], proc.pid
    finally:
        stop(proc)
        reader.join(timeout=10)


def _sim_ready(line: str) -> str | None:
    match = READY.search(line)
    return None if match is None else match.group(1)


@contextmanager
def simulator_process(
    env: dict[str, str], log: Path, listen: str = "127.0.0.1:0"
) -> Iterator[SimProcess]:
    """`lanes simulate` on `listen` (port 0: any) as its own process with `env`; URL and pid.

    It names its URL in its ready line on stderr: no port to guess, and the URL is known only
    once it listens.
    """
    with announced_process(["simulate", "--listen", listen], env, log, _sim_ready) as (url, pid):
        yield SimProcess(url, pid)


@contextmanager
def sleeper(env: dict[str, str]) -> Iterator[int]:
    """A Python process with `env` that does nothing once it runs; its pid."""
    child = subprocess.Popen(
        [sys.executable, "-c", SLEEPER], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        yield child.pid
    finally:
        stop(child)
        if child.stdout is not None:
            child.stdout.close()
