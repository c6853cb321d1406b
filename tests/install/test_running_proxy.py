"""Finding the running `lanes serve` on an address, and reloading it only when it is ours."""

from __future__ import annotations

import sys

from proxy.install.running_proxy import Reload, is_lanes_serve, reload_proxy
from proxy.machine.machine import Machine
from tests.install.conftest import LINUX_PROC
from tests.machine.fakes import Fakes
from tests.ports import reserved_port


class TestIsLanesServe:
    def test_the_script_and_the_module(self) -> None:
        """`lanes serve` (the script, run directly or by Python) and `python -m proxy serve`."""
        assert [
            is_lanes_serve(["/home/a/.local/bin/lanes", "serve"]),
            is_lanes_serve(["/usr/bin/python3", "/venv/bin/lanes", "serve", "--lanes", "2"]),
            is_lanes_serve([sys.executable, "-m", "proxy", "serve", "--config", "c.toml"]),
        ] == [True, True, True]

    def test_other_commands(self) -> None:
        """Other `lanes` commands, other programs and a bare "serve" are not the proxy."""
        assert [
            is_lanes_serve(["/venv/bin/lanes", "simulate"]),
            is_lanes_serve(["ollama", "serve"]),
            is_lanes_serve([sys.executable, "-m", "pytest", "serve"]),
            is_lanes_serve(["serve"]),
            is_lanes_serve([]),
        ] == [False, False, False, False, False]


class TestReloadProxy:
    @LINUX_PROC
    def test_nothing_listening(self) -> None:
        """No process on the port: nothing is signalled, and nothing listens."""
        with reserved_port() as port:
            done = reload_proxy(Machine.current(), f"http://127.0.0.1:{port}")
        assert done == Reload(False, (), f"nothing listens on port {port}")

    def test_a_machine_that_cannot_tell(self, fakes: Fakes) -> None:
        """Without /proc the listener is unknown: nothing is signalled, and it says why."""
        done = reload_proxy(fakes.machine("linux"), "http://127.0.0.1:11435")
        assert done == Reload(True, (), "this machine does not show who listens on port 11435")
