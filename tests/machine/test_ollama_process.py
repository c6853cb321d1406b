"""The running Ollama as a process: its pids, its start time and its NUM_PARALLEL.

The live tests run `lanes simulate` as its own process, with or without OLLAMA_NUM_PARALLEL
in its environment, as a real Ollama would be started, and read it the way the daemon does:
through /proc/net/tcp, /proc/<pid>/fd and /proc/<pid>/environ (Linux only). The macOS and
systemd branches run everywhere, on fake external commands and a fake /proc.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import psutil
import pytest

from proxy.lanes.lanemap import Parallel
from proxy.machine.machine import Machine
from proxy.machine.ollama_process import (
    REMOTE,
    OllamaProcess,
    parallel_from,
    read_ollama_process,
)
from tests.machine.fakes import Fakes
from tests.machine.processes import SimProcess, child_env, simulator_process, sleeper
from tests.ports import reserved_port

LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads Linux /proc like the daemon does there"
)
NO_PID = 99_999_999  # more than any pid_max: no process has it
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  ...\n"


def proc_net_row(port: int, inode: int, uid: int = 997) -> str:
    """A /proc/net/tcp LISTEN row for 0.0.0.0:`port` (the address is the same in any order)."""
    return (
        f"   0: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000"
        f"  {uid}        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
    )


def fake_proc(root: Path, port: int, owner: int | None = None) -> Path:
    """A /proc with one socket listening on `port`, owned by `owner` (None: not visible)."""
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(HEADER + proc_net_row(port, 4242))
    if owner is not None:
        (root / str(owner) / "fd").mkdir(parents=True)
        (root / str(owner) / "fd" / "3").symlink_to("socket:[4242]")
    return root


def command_name(pid: int) -> str:
    """A Linux process's short command name, from /proc/<pid>/comm."""
    return Path(f"/proc/{pid}/comm").read_text().strip()


async def version_of(url: str) -> str:
    """The version a server reports at /api/version."""
    async with aiohttp.ClientSession() as session, session.get(url + "/api/version") as resp:
        body = await resp.json()
    return str(body["version"])


@pytest.fixture(name="linux")
def _linux(fakes: Fakes) -> Machine:
    """A Linux machine reading the real /proc, with fake external commands only."""
    return replace(fakes.machine("linux"), proc_root=Path("/proc"))


@pytest.fixture(name="sim_with_3", scope="module")
def _sim_with_3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """`lanes simulate` as a process started with OLLAMA_NUM_PARALLEL=3."""
    tmp = tmp_path_factory.mktemp("sim3")
    env = child_env(tmp, OLLAMA_NUM_PARALLEL="3")
    with simulator_process(env, tmp / "sim.log") as sim:
        yield sim


@pytest.fixture(name="sim_unset", scope="module")
def _sim_unset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """`lanes simulate` as a process started without OLLAMA_NUM_PARALLEL."""
    tmp = tmp_path_factory.mktemp("sim-unset")
    with simulator_process(child_env(tmp), tmp / "sim.log") as sim:
        yield sim


@LINUX_PROC
class TestLiveSimulator:
    async def test_num_parallel_from_its_environment(
        self, sim_with_3: SimProcess, linux: Machine
    ) -> None:
        """Started with OLLAMA_NUM_PARALLEL=3: 3, read from its /proc/<pid>/environ."""
        found = read_ollama_process(linux, sim_with_3.url, await version_of(sim_with_3.url))
        pid = sim_with_3.pid
        where = f"/proc/{pid}/environ of {command_name(pid)} (pid {pid})"
        assert Parallel(3, "ollama-env", where) == found.num_parallel

    def test_its_pid_and_start_time(self, sim_with_3: SimProcess, linux: Machine) -> None:
        """The listener is the simulator's process, with that process's start time."""
        found = read_ollama_process(linux, sim_with_3.url, "0.33.0-sim")
        started = psutil.Process(sim_with_3.pid).create_time()
        assert (sim_with_3.pid,) == found.pids
        assert started == found.started_at

    async def test_unset_is_ollamas_default(self, sim_unset: SimProcess, linux: Machine) -> None:
        """Started without the variable: the default of the version it reports (1), unset."""
        version = await version_of(sim_unset.url)
        found = read_ollama_process(linux, sim_unset.url, version)
        assert found.num_parallel.value == 1
        assert found.num_parallel.source == "ollama-env"
        assert found.num_parallel.detail.startswith(f"unset: Ollama {version}'s default, in /proc/")
        assert (sim_unset.pid,) == found.pids

    def test_unset_on_a_version_that_chose_its_own(
        self, sim_unset: SimProcess, linux: Machine
    ) -> None:
        """Unset on Ollama 0.6.7, which chose NUM_PARALLEL itself: unknown, with the fix."""
        found = read_ollama_process(linux, sim_unset.url, "0.6.7")
        assert found.num_parallel.value is None
        assert found.num_parallel.source == "assumed"
        assert "Ollama 0.6.7 chooses it at each load" in found.num_parallel.detail
        assert "set num_parallel" in found.num_parallel.detail

    def test_localhost_is_local_too(self, sim_with_3: SimProcess, linux: Machine) -> None:
        """`localhost` in the URL is the same loopback Ollama."""
        url = sim_with_3.url.replace("127.0.0.1", "localhost")
        assert read_ollama_process(linux, url, "0.33.0-sim").num_parallel.value == 3


class TestNotReadable:
    def test_a_remote_host(self, fakes: Fakes) -> None:
        """A host that is not this machine: unknown, and the detail says what to set."""
        found = read_ollama_process(fakes.machine("linux"), "http://gpu-box:11434", "0.33.0")
        assert OllamaProcess((), None, Parallel.unknown(REMOTE)) == found
        assert "set num_parallel in its [[serve.upstreams]] entry" in found.num_parallel.detail
        assert fakes.calls() == []

    @LINUX_PROC
    def test_a_port_nobody_listens_on(self, linux: Machine) -> None:
        """A loopback port with no listener: unknown, no pids, and the detail says so."""
        with reserved_port() as port:
            found = read_ollama_process(linux, f"http://127.0.0.1:{port}", "0.33.0")
        assert (found.pids, found.started_at, found.num_parallel.value) == ((), None, None)
        assert f"nothing listens on port {port}" in found.num_parallel.detail

    def test_no_commands_and_no_proc(self, fakes: Fakes, tmp_path: Path) -> None:
        """A Mac without lsof or launchctl: unknown with the reason, never an exception."""
        machine = replace(fakes.machine("darwin"), env={"PATH": str(tmp_path / "empty")})
        found = read_ollama_process(machine, "http://127.0.0.1:11434", "0.33.0")
        assert (found.pids, found.started_at) == ((), None)
        assert found.num_parallel.value is None
        assert found.num_parallel.detail.startswith("launchctl is not available and ")


class TestSystemd:
    def test_another_users_ollama_through_its_unit(self, fakes: Fakes) -> None:
        """A listener this user cannot see into: the value of ollama.service's Environment=."""
        fakes.answer(
            "systemctl", "show", stdout="LoadState=loaded\nEnvironment=OLLAMA_NUM_PARALLEL=6\n"
        )
        machine = replace(fakes.machine("linux"), proc_root=fake_proc(fakes.root / "p", 11434))
        found = read_ollama_process(machine, "http://127.0.0.1:11434", "0.33.0")
        expected = Parallel(6, "ollama-env", "systemctl show ollama.service")
        assert OllamaProcess((), None, expected) == found

    def test_an_unreadable_environment_and_no_unit(self, fakes: Fakes) -> None:
        """A visible listener whose environ is unreadable, and no unit: unknown, with why."""
        proc = fake_proc(fakes.root / "p", 11434, owner=NO_PID)
        found = read_ollama_process(
            replace(fakes.machine("linux"), proc_root=proc), "http://[::1]:11434", "0.33.0"
        )
        assert (found.pids, found.started_at, found.num_parallel.value) == ((NO_PID,), None, None)
        assert found.num_parallel.detail.startswith(
            f"the environment of pid {NO_PID} is not readable and there is no ollama.service"
        )


class TestMacos:
    def test_launchctl_getenv_first(self, fakes: Fakes) -> None:
        """launchd's value is what the app and brew services start with."""
        fakes.answer("launchctl", "getenv", "OLLAMA_NUM_PARALLEL", stdout="4\n")
        fakes.answer("lsof", stdout=f"p{NO_PID}\ncollama\nf5\nn127.0.0.1:11434\n")
        found = read_ollama_process(fakes.machine("darwin"), "http://127.0.0.1:11434", "0.33.0")
        assert OllamaProcess((NO_PID,), None, Parallel(4, "ollama-env", "launchctl getenv")) == (
            found
        )

    def test_then_the_listeners_own_environment(self, fakes: Fakes) -> None:
        """Nothing in launchd: the listening process's environment, where it can be read."""
        with sleeper({"OLLAMA_NUM_PARALLEL": "5"}) as pid:
            fakes.answer("lsof", stdout=f"p{pid}\ncollama\nf5\nn127.0.0.1:11434\n")
            found = read_ollama_process(fakes.machine("darwin"), "http://127.0.0.1:11434", "0.33.0")
            started = psutil.Process(pid).create_time()
            name = psutil.Process(pid).name()
        assert OllamaProcess(
            (pid,), started, Parallel(5, "ollama-env", f"the environment of {name} (pid {pid})")
        ) == (found)

    def test_unset_everywhere_is_the_default(self, fakes: Fakes) -> None:
        """Unset in launchd and the listener not readable: Ollama's default, per launchd."""
        fakes.answer("lsof", stdout=f"p{NO_PID}\ncollama\nf5\nn127.0.0.1:11434\n")
        found = read_ollama_process(fakes.machine("darwin"), "http://127.0.0.1:11434", "0.33.0")
        assert Parallel(1, "ollama-env", "unset: Ollama 0.33.0's default, in launchctl getenv") == (
            found.num_parallel
        )


class TestParallelFrom:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("4", Parallel(4, "ollama-env", "here")),
            ("0", Parallel(1, "ollama-env", "here")),
            (None, Parallel(1, "ollama-env", "unset: Ollama 0.12.0's default, in here")),
            ("  ", Parallel(1, "ollama-env", "unset: Ollama 0.12.0's default, in here")),
            (
                "many",
                Parallel(
                    1, "ollama-env", "'many' is not a number: Ollama 0.12.0's default, in here"
                ),
            ),
        ],
    )
    def test_as_ollama_takes_it(self, raw: str | None, expected: Parallel) -> None:
        """A number is itself (0 acts as 1); unset or not a number is the version's default."""
        assert expected == parallel_from(raw, "here", "0.12.0")

    def test_no_default_to_fall_back_on(self) -> None:
        """Not a number on a version that chose its own value: unknown, with the fix."""
        found = parallel_from("many", "here", "0.9.6")
        assert found.value is None
        assert found.detail == (
            "'many' is not a number in here, so Ollama 0.9.6 chooses it at each load: "
            "set num_parallel in this host's [[serve.upstreams]] entry"
        )
