"""Ollama's OLLAMA_* environment: from its process, launchd or its systemd unit, and where."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from proxy.machine.environment import (
    launchctl_environment,
    ollama_environment,
    process_environment,
    unit_environment,
)
from tests.machine.fakes import Fakes
from tests.machine.processes import sleeper

LINUX_PROC = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


class TestOllamaEnvironment:
    def test_systemctl_show_when_no_process_is_readable(self, fakes: Fakes) -> None:
        """Without a readable process the unit's configured Environment= is parsed."""
        fakes.answer(
            "systemctl",
            "show",
            stdout='LoadState=loaded\nEnvironment=PATH=/bin OLLAMA_NUM_PARALLEL=3 "OLLAMA_X=a b"\n',
        )
        env, source = ollama_environment(fakes.machine("linux"), [])
        assert env == {"OLLAMA_NUM_PARALLEL": "3", "OLLAMA_X": "a b"}
        assert source == "systemctl show ollama.service"

    def test_nothing_readable(self, fakes: Fakes) -> None:
        """No process and no unit: unknown, with the reason."""
        env, source = ollama_environment(fakes.machine("linux"), [])
        assert env is None
        assert "no ollama.service" in source

    @LINUX_PROC
    def test_proc_environ_of_a_child(self, fakes: Fakes) -> None:
        """A process's OLLAMA_* variables are read from /proc/<pid>/environ."""
        machine = replace(fakes.machine("linux"), proc_root=Path("/proc"))
        with sleeper({"OLLAMA_NUM_PARALLEL": "5", "OTHER": "x"}) as pid:
            env, source = ollama_environment(machine, [pid])
        assert env == {"OLLAMA_NUM_PARALLEL": "5"}
        assert source.startswith(f"/proc/{pid}/environ")

    def test_launchctl_getenv_on_macos(self, fakes: Fakes) -> None:
        """On macOS the values come from launchd's user environment."""
        fakes.answer("launchctl", "getenv", "OLLAMA_NUM_PARALLEL", stdout="4\n")
        env, source = ollama_environment(fakes.machine("darwin"), [])
        assert env == {"OLLAMA_NUM_PARALLEL": "4"}
        assert source.startswith("launchctl getenv")

    def test_macos_without_launchctl(self, fakes: Fakes, tmp_path: Path) -> None:
        """A Mac whose PATH has no launchctl: unknown, with the reason."""
        machine = replace(fakes.machine("darwin"), env={"PATH": str(tmp_path / "empty")})
        assert ollama_environment(machine, []) == (None, "launchctl is not available")


class TestPieces:
    def test_launchctl_asks_only_for_the_names_given(self, fakes: Fakes) -> None:
        """One `launchctl getenv` per name asked for; unset names are left out."""
        fakes.answer("launchctl", "getenv", "OLLAMA_NUM_PARALLEL", stdout="2\n")
        found = launchctl_environment(fakes.machine("darwin"), ("OLLAMA_NUM_PARALLEL",))
        assert found == {"OLLAMA_NUM_PARALLEL": "2"}
        assert fakes.calls() == [["launchctl", "getenv", "OLLAMA_NUM_PARALLEL"]]

    def test_a_unit_line_with_an_unbalanced_quote(self, fakes: Fakes) -> None:
        """An Environment= line shell quoting cannot split is still read, word by word."""
        fakes.answer(
            "systemctl",
            "show",
            stdout='LoadState=loaded\nEnvironment=OLLAMA_NUM_PARALLEL=2 OLLAMA_ORIGINS="x\n',
        )
        found = unit_environment(fakes.machine("linux"))
        assert found == {"OLLAMA_NUM_PARALLEL": "2", "OLLAMA_ORIGINS": '"x'}

    def test_a_unit_that_is_not_loaded(self, fakes: Fakes) -> None:
        """No ollama.service: None, not an empty environment."""
        fakes.answer("systemctl", "show", stdout="LoadState=not-found\n")
        assert unit_environment(fakes.machine("linux")) is None

    def test_process_environment_of_a_child(self) -> None:
        """A process of this user shows its OLLAMA_* variables (what macOS allows too)."""
        with sleeper({"OLLAMA_NUM_PARALLEL": "7", "OTHER": "x"}) as pid:
            assert process_environment(pid) == {"OLLAMA_NUM_PARALLEL": "7"}

    def test_process_environment_of_no_process(self) -> None:
        """A pid no process has: None, not an error."""
        assert process_environment(99_999_999) is None
