"""`lanes doctor` against real servers: a simulator process, the proxy, and port squatters.

The simulator runs as its own process with OLLAMA_NUM_PARALLEL in its environment, like
Ollama, so the doctor reads the value the way it does on a real machine: it finds the
process listening on Ollama's port through /proc/net/tcp and /proc/<pid>/fd, then reads
/proc/<pid>/environ. Linux only (CI is Linux); external commands are fakes.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from proxy import __version__
from proxy.commands.doctor import doctor
from proxy.machine.machine import Machine
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import base_url
from tests.machine import processes
from tests.machine.fakes import Fakes
from tests.ports import reserved_port

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads Linux /proc like the doctor does there"
)

# A stand-in Ollama that shares its port with SO_REUSEPORT, so two can listen at once.
SQUATTER = r"""
import json, socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = {"/api/version": {"version": "0.12.0"}, "/api/ps": {"models": []}}.get(self.path)
        data = json.dumps(body).encode() if body is not None else b"404 page not found"
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
class Server(HTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()
server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", server.server_address[1], flush=True)
server.serve_forever()
"""


def child_env(tmp: Path) -> dict[str, str]:
    """The test's environment with OLLAMA_NUM_PARALLEL=2 and no user config files."""
    return processes.child_env(tmp, OLLAMA_NUM_PARALLEL="2")


@pytest.fixture(name="sim_process", scope="module")
def _sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lanes simulate` as a process with OLLAMA_NUM_PARALLEL=2; yields its URL."""
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    with processes.simulator_process(child_env(log.parent), log) as sim:
        yield sim.url


@pytest.fixture(name="machine")
def _machine(fakes: Fakes) -> Machine:
    """A Linux machine reading the real /proc, with fake external commands only."""
    return replace(fakes.machine("linux"), proc_root=Path("/proc"))


async def run_doctor(machine: Machine, ollama: str, proxy: str) -> tuple[int, str]:
    out = io.StringIO()
    args = argparse.Namespace(json=False, url=proxy, ollama=ollama)
    status = await doctor(args, machine, out)
    return status, out.getvalue()


@pytest.fixture(name="squatters")
def _squatters(tmp_path: Path) -> Iterator[tuple[int, list[int]]]:
    """Two processes listening on one port with SO_REUSEPORT; yields (port, pids).

    The first binds port 0 and prints the port it got; the second joins it there.
    """
    port = 0
    procs: list[subprocess.Popen[str]] = []
    try:
        for _ in range(2):
            proc = subprocess.Popen(
                [sys.executable, "-c", SQUATTER, str(port)],
                env=child_env(tmp_path),
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            ready, _, bound = proc.stdout.readline().partition(" ")
            assert ready == "ready"
            port = int(bound)
        yield port, [proc.pid for proc in procs]
    finally:
        for proc in procs:
            processes.stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()


class TestDoctorLive:
    async def test_matching_lanes_is_green(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """Simulator with NUM_PARALLEL 2 behind a 2-lane proxy: all ok, exit 0."""
        prx = await proxy(upstream=sim_process, lanes=2)
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 0, out
        assert "Ollama 0.33.0-sim answers" in out
        assert "OLLAMA_NUM_PARALLEL from /proc/" in out
        assert f"The proxy {__version__} answers" in out
        assert "[ok  ] No port is claimed twice (checked " in out
        assert out.endswith("All good.\n")

    async def test_json_output(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """--json prints the same findings as data."""
        prx = await proxy(upstream=sim_process, lanes=2)
        out = io.StringIO()
        args = argparse.Namespace(json=True, url=base_url(prx), ollama=sim_process)
        assert await doctor(args, machine, out) == 0
        body = json.loads(out.getvalue())
        assert body["ok"] is True
        assert {f["check"] for f in body["findings"]} >= {"ollama", "num_parallel", "proxy"}

    async def test_token_protected_proxy(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """With LANES_AUTH_TOKEN set, the doctor reads /stats of a token-protected proxy."""
        prx = await proxy(upstream=sim_process, lanes=2, auth_token="s3cret")
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 1
        assert "HTTP 401" in out
        with_token = replace(machine, env={**machine.env, "LANES_AUTH_TOKEN": "s3cret"})
        status, out = await run_doctor(with_token, sim_process, base_url(prx))
        assert status == 0, out

    async def test_mismatched_lanes(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """A 3-lane proxy over NUM_PARALLEL 2 is reported with its fix; exit 1."""
        prx = await proxy(upstream=sim_process, lanes=3)
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 1
        assert "[FAIL] Ollama serves 2 request(s) at once per model" in out
        assert "but the proxy sends up to 3 at once" in out
        assert "fix: Run `lanes install --lanes 3`" in out

    async def test_simulator_down(self, proxy: ProxyFactory, machine: Machine) -> None:
        """Nothing on Ollama's address: reported as down; exit 1."""
        with reserved_port() as port:
            dead = f"http://127.0.0.1:{port}"
            prx = await proxy(upstream=dead, lanes=2)
            status, out = await run_doctor(machine, dead, base_url(prx))
        assert status == 1
        assert f"[FAIL] Ollama does not answer at {dead}" in out

    async def test_ollama_address_is_the_proxy(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """Pointing the doctor's Ollama at the proxy is recognised, not taken for Ollama."""
        prx = await proxy(upstream=sim_process, lanes=2)
        status, out = await run_doctor(machine, base_url(prx), base_url(prx))
        assert status == 1
        assert "answers like the lanes proxy" in out

    async def test_port_conflict(
        self, squatters: tuple[int, list[int]], proxy: ProxyFactory, machine: Machine
    ) -> None:
        """Two processes listening on Ollama's port (SO_REUSEPORT) are a conflict; exit 1."""
        port, pids = squatters
        ollama = f"http://127.0.0.1:{port}"
        prx = await proxy(upstream=ollama, lanes=2)
        status, out = await run_doctor(machine, ollama, base_url(prx))
        assert status == 1
        assert f"[FAIL] 2 servers listen on port {port}" in out
        for pid in pids:
            assert f"pid {pid} (python" in out
