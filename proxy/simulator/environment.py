"""The simulator's own environment carries OLLAMA_NUM_PARALLEL = its lanes, as Ollama's does.

The proxy reads a running Ollama's NUM_PARALLEL from the process that listens on its port
(Linux: /proc/<pid>/environ; macOS: the process's arguments through psutil). Both show only
the environment the process was started with, so setting `os.environ` is not enough: when
the effective `lanes` (a flag, LANES_SIM_LANES or the config file) differs from what
OLLAMA_NUM_PARALLEL says, `lanes simulate` executes itself again (same interpreter, same
arguments, same pid) with the variable set, once: REEXEC_MARKER guards against a loop.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from proxy.lanes.lanemap import parse_num_parallel
from proxy.ollama import default_num_parallel

__all__ = ["NUM_PARALLEL", "REEXEC_MARKER", "environment_for", "reexec_with_lanes"]

NUM_PARALLEL = "OLLAMA_NUM_PARALLEL"
REEXEC_MARKER = "LANES_SIMULATE_REEXECUTED"


def environment_for(
    lanes: int, env: Mapping[str, str], version: str | None = None
) -> dict[str, str] | None:
    """The environment to execute again with, or None when `env` already says `lanes` (read
    as Ollama `version` reads it: "04" is 4, unset is its default) or this process is the
    re-executed one."""
    reading = parse_num_parallel(env.get(NUM_PARALLEL), default_num_parallel(version))
    if env.get(REEXEC_MARKER) or reading == lanes:
        return None
    return {**env, NUM_PARALLEL: str(lanes), REEXEC_MARKER: "1"}


def reexec_with_lanes(lanes: int, version: str | None = None) -> None:
    """Replace this process by itself with OLLAMA_NUM_PARALLEL=`lanes` when needed; returns
    only when nothing had to change."""
    env = environment_for(lanes, os.environ, version)
    if env is None:
        return
    argv = list(sys.orig_argv) or [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)
