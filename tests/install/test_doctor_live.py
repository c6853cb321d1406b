"""`lanes doctor` against real servers: a simulator process, the proxy, and port squatters.

The simulator runs as its own process with OLLAMA_NUM_PARALLEL=2 in its environment, like
Ollama, so the doctor reads the value the way it does on a real machine: it finds the
process listening on Ollama's port through /proc/net/tcp and /proc/<pid>/fd, then reads
/proc/<pid>/environ. Its default models include an embedding model (all-minilm) and a
one-lane architecture (qwen3-vl, qwen3vl). Linux only (CI is Linux); external commands are
fakes. The lane-map conflicts are driven by the proxy's config file, and a proxy started
from the same settings.
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
from aiohttp.test_utils import TestServer

from proxy import __version__
from proxy.commands.doctor import doctor
from proxy.config import load_settings
from proxy.machine.machine import Machine
from proxy.settings import ProxySettings
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import base_url
from tests.install.conftest import LINUX_PROC
from tests.machine import processes
from tests.machine.fakes import Fakes
from tests.ports import reserved_port

pytestmark = LINUX_PROC

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


@pytest.fixture(name="machine")
def _machine(fakes: Fakes) -> Machine:
    """A Linux machine reading the real /proc, with fake external commands only."""
    return replace(fakes.machine("linux"), proc_root=Path("/proc"))


async def run_doctor(machine: Machine, ollama: str, proxy: str) -> tuple[int, str]:
    """`lanes doctor --url proxy --ollama ollama` on `machine`: (exit status, output)."""
    out = io.StringIO()
    args = argparse.Namespace(json=False, url=proxy, ollama=ollama)
    status = await doctor(args, machine, out)
    return status, out.getvalue()


async def configured(machine: Machine, proxy: ProxyFactory, sim: str, text: str) -> TestServer:
    """Write the proxy's config file (upstream: the simulator, then `text` in [serve]) and
    start a proxy from the settings it gives."""
    path = machine.config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[serve]\nupstream = "{sim}"\n{text}')
    settings = load_settings(ProxySettings, {}, config_file=path)
    return await proxy(
        upstream=settings.upstream,
        lanes=settings.lanes,
        model_lanes=settings.model_lanes,
        num_parallel=settings.num_parallel,
    )


def lane_map_rows(out: str) -> dict[str, tuple[int, str]]:
    """The doctor's lane-map section: model -> (lanes, the rest of its line)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("lane map of "))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        name, lanes, rest = line.split(None, 2)
        rows[name] = (int(lanes), rest)
    return rows


def finding(out: str, start: str) -> tuple[str, str]:
    """The finding line that starts with `start` and the fix line below it ("" if none)."""
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(start))
    below = lines[i + 1] if i + 1 < len(lines) else ""
    return lines[i], below.strip() if below.startswith("       fix: ") else ""


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
    async def test_auto_lanes_are_green(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """Simulator with NUM_PARALLEL 2 behind an auto proxy: all ok, exit 0."""
        prx = await proxy(upstream=sim_process, lanes="auto")
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 0, out
        assert "Ollama 0.33.0-sim answers" in out
        assert "OLLAMA_NUM_PARALLEL from /proc/" in out
        assert "; the proxy follows NUM_PARALLEL = 2 from ollama-env." in out
        assert f"The proxy {__version__} answers" in out
        assert "[ok  ] No port is claimed twice (checked " in out
        assert "[ok  ] No model gets more lanes than Ollama runs it with" in out
        assert out.endswith("All good.\n")

    async def test_the_lane_map_names_each_source(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """The map gives a chat model NUM_PARALLEL from Ollama's environment and one lane by
        rule to the embedding model and the qwen3vl model."""
        prx = await proxy(upstream=sim_process, lanes="auto")
        _, out = await run_doctor(machine, sim_process, base_url(prx))
        assert (
            f'lane map of default ({sim_process}): lanes "auto", NUM_PARALLEL 2 (ollama-env)' in out
        )
        rows = lane_map_rows(out)
        assert rows["llama3.2:latest"] == (2, "ollama-env")
        assert rows["all-minilm:latest"] == (1, "rule:embedding")
        assert rows["qwen3-vl:8b"] == (1, "rule:architecture qwen3vl")

    async def test_json_output(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """--json prints the same findings as data, and the lane map."""
        prx = await proxy(upstream=sim_process, lanes="auto")
        out = io.StringIO()
        args = argparse.Namespace(json=True, url=base_url(prx), ollama=sim_process)
        assert await doctor(args, machine, out) == 0
        body = json.loads(out.getvalue())
        assert body["ok"] is True
        assert {f["check"] for f in body["findings"]} >= {"ollama", "num_parallel", "proxy"}
        lane_map = body["lane_map"]
        assert (lane_map["upstream"], lane_map["cap"], lane_map["num_parallel"]["value"]) == (
            "default",
            None,
            2,
        )
        assert lane_map["models"]["all-minilm:latest"] == {
            "lanes": 1,
            "source": "rule:embedding",
            "ollama_lanes": 1,
            "ollama_source": "rule:embedding",
        }

    async def test_token_protected_proxy(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """With LANES_AUTH_TOKEN set, the doctor reads /stats of a token-protected proxy."""
        prx = await proxy(upstream=sim_process, lanes="auto", auth_token="s3cret")
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


class TestLaneConflicts:
    async def test_model_lanes_above_what_ollama_runs(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """model_lanes giving the embedding model 4 lanes fails, with the entry to change."""
        prx = await configured(
            machine, proxy, sim_process, '[serve.model_lanes]\n"all-minilm" = 4\n'
        )
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 1, out
        assert lane_map_rows(out)["all-minilm:latest"] == (
            4,
            "config  (Ollama runs 1: rule:embedding)",
        )
        line, fix = finding(out, "[FAIL] model_lanes gives all-minilm:latest 4 lanes")
        assert "but Ollama runs it with 1 (rule:embedding)" in line
        assert fix == ("fix: Remove all-minilm:latest from [serve.model_lanes], or lower it to 1.")

    async def test_unreadable_num_parallel_is_assumed_one(
        self, sim_process: str, proxy: ProxyFactory, fakes: Fakes
    ) -> None:
        """A machine that shows no listeners and has no ollama.service: 1 is assumed, a
        warning says why and how to fix it."""
        blind = fakes.machine("linux")
        prx = await configured(blind, proxy, sim_process, "")
        status, out = await run_doctor(blind, sim_process, base_url(prx))
        assert status == 0, out
        line, fix = finding(out, "[warn] OLLAMA_NUM_PARALLEL in effect is unknown: ")
        assert "this machine does not show who listens on port" in line
        assert "The proxy assumes 1 and gives each model 1 lane." in line
        assert fix.startswith("fix: Set num_parallel = N (Ollama's value) in [serve]")
        assert lane_map_rows(out)["llama3.2:latest"] == (1, "assumed")

    async def test_num_parallel_setting_settles_an_unreadable_host(
        self, sim_process: str, proxy: ProxyFactory, fakes: Fakes
    ) -> None:
        """With num_parallel = 2 in the config the same machine is ok, the map says config."""
        blind = fakes.machine("linux")
        prx = await configured(blind, proxy, sim_process, "num_parallel = 2\n")
        status, out = await run_doctor(blind, sim_process, base_url(prx))
        assert status == 0, out
        assert "the proxy uses num_parallel = 2 from [serve]." in out
        rows = lane_map_rows(out)
        assert (rows["llama3.2:latest"], rows["qwen3-vl:8b"][1]) == (
            (2, "config"),
            "rule:architecture qwen3vl",
        )

    async def test_num_parallel_setting_above_what_ollama_runs(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """num_parallel = 4 where the proxy could read Ollama's 2 fails, with the fix."""
        prx = await configured(machine, proxy, sim_process, "num_parallel = 4\n")
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 1, out
        line, fix = finding(out, "[FAIL] Ollama serves 2 request(s) at once per model")
        assert line.endswith("but the proxy's settings say num_parallel = 4.")
        assert fix.startswith("fix: Remove num_parallel from [serve]")

    async def test_a_cap_below_num_parallel_warns(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """lanes = 1 by hand under NUM_PARALLEL 2: the proxy is the limit, a warning."""
        prx = await configured(machine, proxy, sim_process, "lanes = 1\n")
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 0, out
        line, fix = finding(out, "[warn] Ollama serves 2 request(s) at once per model")
        assert line.endswith("but the proxy sends up to 1 at once: the proxy is the limit.")
        assert fix.startswith('fix: Set lanes = "auto" in [serve]')

    async def test_a_cap_above_the_one_lane_models_fails(
        self, sim_process: str, proxy: ProxyFactory, machine: Machine
    ) -> None:
        """lanes = 2 by hand matches NUM_PARALLEL but not the models Ollama runs with 1."""
        prx = await configured(machine, proxy, sim_process, "lanes = 2\n")
        status, out = await run_doctor(machine, sim_process, base_url(prx))
        assert status == 1, out
        assert "and the proxy agrees." in out
        line, fix = finding(out, "[FAIL] lanes = 2 (set by hand) is more than Ollama runs for ")
        assert "all-minilm:latest (1: rule:embedding)" in line
        assert "qwen3-vl:8b (1: rule:architecture qwen3vl)" in line
        assert fix.startswith('fix: Set lanes = "auto" in [serve], or give those models')


class TestDoctorDown:
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
