"""Who listens on a port: /proc on Linux, `lsof` on macOS, or "cannot tell"."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.machine.listeners import Listener, port_listeners
from tests.machine.fakes import Fakes


class TestPortListeners:
    @pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
    def test_this_process_listening(self, fakes: Fakes) -> None:
        """A socket this test listens on is listed with this process as its owner."""
        machine = replace(fakes.machine("linux"), proc_root=Path("/proc"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            port = sock.getsockname()[1]
            found = port_listeners(machine, port)
        assert found is not None
        listeners, pids = found
        assert pids == [os.getpid()]
        assert [item.address for item in listeners] == [f"127.0.0.1:{port}"]
        assert listeners[0].owner.startswith(f"pid {os.getpid()} (")

    def test_lsof_on_macos(self, fakes: Fakes) -> None:
        """On macOS, `lsof -F` names the listeners and their pids."""
        fakes.answer("lsof", stdout="p812\ncollama\nf5\nn127.0.0.1:11434\n")
        found = port_listeners(fakes.machine("darwin"), 11434)
        assert found == ((Listener("127.0.0.1:11434", "pid 812 (ollama)"),), [812])

    def test_macos_without_lsof(self, fakes: Fakes, tmp_path: Path) -> None:
        """Without lsof the answer is None (cannot tell), not "nobody"."""
        machine = replace(fakes.machine("darwin"), env={"PATH": str(tmp_path / "empty")})
        assert port_listeners(machine, 11434) is None

    def test_no_proc_means_cannot_tell(self, fakes: Fakes) -> None:
        """A Linux machine without /proc/net cannot tell who listens."""
        assert port_listeners(fakes.machine("linux"), 11434) is None
