"""The simulator's own environment carries OLLAMA_NUM_PARALLEL = its lanes, like Ollama's.

The process tests run `lanes simulate` for real and read its environment the way the proxy
reads a running Ollama's on Linux: the owner of the listening socket (/proc/net/tcp and
/proc/<pid>/fd), then /proc/<pid>/environ, which shows the environment it was started with.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from proxy.machine.sockets import listening_sockets, socket_owners
from proxy.simulator.environment import NUM_PARALLEL, REEXEC_MARKER, environment_for
from tests.waiting import PATIENCE_S, wait_for

REPO = Path(__file__).resolve().parents[2]
PROC = Path("/proc")
linux_only = pytest.mark.skipif(
    not (PROC / "net" / "tcp").exists(), reason="reads Linux /proc like the proxy does there"
)

# `lanes simulate` prints this line on stderr once it listens.
READY = re.compile(r"^simulated Ollama \S+ on (http://\S+) ", re.MULTILINE)


class TestEnvironmentFor:
    def test_lanes_not_in_the_environment(self) -> None:
        """Lanes 4 without OLLAMA_NUM_PARALLEL: execute again with it set, and the marker."""
        env = environment_for(4, {"PATH": "/bin"})
        assert env == {"PATH": "/bin", NUM_PARALLEL: "4", REEXEC_MARKER: "1"}

    def test_lanes_differ_from_the_environment(self) -> None:
        """Lanes 2 (a flag) with OLLAMA_NUM_PARALLEL=4: execute again with 2."""
        env = environment_for(2, {NUM_PARALLEL: "4"})
        assert env is not None
        assert env[NUM_PARALLEL] == "2"

    @pytest.mark.parametrize("raw", ["3", "03", " 3 "])
    def test_environment_already_says_so(self, raw: str) -> None:
        """OLLAMA_NUM_PARALLEL that Ollama reads as the lanes: nothing to do."""
        assert environment_for(3, {NUM_PARALLEL: raw}) is None

    def test_unset_as_ollama_reads_it(self) -> None:
        """Unset is the version's default: 1 lane on 0.33 needs nothing, 2 lanes need the
        variable."""
        assert environment_for(1, {}, "0.33.0-sim") is None
        assert environment_for(2, {}, "0.33.0-sim") is not None

    def test_no_second_execution(self) -> None:
        """A process that was re-executed never executes again, whatever its environment."""
        assert environment_for(3, {NUM_PARALLEL: "4", REEXEC_MARKER: "1"}) is None


@dataclass
class Simulate:
    """A running `lanes simulate` process and the URL it printed."""

    pid: int  # of the process the test started
    url: str

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port


SimulateFactory = Callable[..., Awaitable[Simulate]]


def child_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The test's environment without OLLAMA_*/LANES_* variables or user config, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANES_", "OLLAMA_"))}
    return env | {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp)} | extra


@pytest.fixture(name="simulate")
async def _simulate(tmp_path: Path) -> AsyncIterator[SimulateFactory]:
    """Factory: `await simulate("--lanes", "3", OLLAMA_NUM_PARALLEL="2")` runs
    `lanes simulate` on port 0 and returns once its ready line names its URL."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(*flags: str, **env: str) -> Simulate:
        log = tmp_path / f"simulate-{len(procs)}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "proxy", "simulate", "--listen", "127.0.0.1:0", *flags),
                cwd=REPO,
                env=child_env(tmp_path, **env),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=out,
            )
        procs.append(proc)

        def ready() -> str | None:
            found = READY.search(log.read_text(encoding="utf-8", errors="replace"))
            if found is None and proc.returncode is not None:
                pytest.fail(f"lanes simulate exited with {proc.returncode}: {log.read_text()}")
            return found.group(1) if found else None

        url = await wait_for(ready, timeout=PATIENCE_S, what="the simulator's ready line")
        assert url is not None
        return Simulate(proc.pid, url)

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def listener_pids(port: int) -> set[int]:
    """The pids owning the sockets that listen on `port`, found as the proxy finds Ollama."""
    sockets = listening_sockets(PROC, port) or []
    return set(socket_owners(PROC, {s.inode for s in sockets}).values())


def environ(pid: int) -> dict[str, str]:
    """The environment process `pid` was started (or last executed) with."""
    raw = (PROC / str(pid) / "environ").read_bytes()
    pairs = (entry.decode().partition("=") for entry in raw.split(b"\0") if entry)
    return {key: value for key, _, value in pairs}


@linux_only
class TestOwnEnvironment:
    async def test_lanes_flag_lands_in_the_environment(self, simulate: SimulateFactory) -> None:
        """`lanes simulate --lanes 3` without OLLAMA_NUM_PARALLEL: the process listening on
        its port is the one the test started, and its environment says 3."""
        sim = await simulate("--lanes", "3")
        pids = listener_pids(sim.port)
        assert ({sim.pid}, "3") == (pids, environ(sim.pid).get(NUM_PARALLEL))

    async def test_flag_beats_the_inherited_value(self, simulate: SimulateFactory) -> None:
        """`--lanes 2` started with OLLAMA_NUM_PARALLEL=4: its environment says 2."""
        sim = await simulate("--lanes", "2", OLLAMA_NUM_PARALLEL="4")
        assert environ(sim.pid).get(NUM_PARALLEL) == "2"

    async def test_matching_environment_is_not_executed_again(
        self, simulate: SimulateFactory
    ) -> None:
        """Started with OLLAMA_NUM_PARALLEL=3 and no flag: it runs as started (no marker)."""
        sim = await simulate(OLLAMA_NUM_PARALLEL="3")
        env = environ(sim.pid)
        assert (env.get(NUM_PARALLEL), env.get(REEXEC_MARKER)) == ("3", None)
