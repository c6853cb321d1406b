"""The machine's external commands: found on its own PATH, and how they ended."""

from __future__ import annotations

from proxy.machine.machine import CommandResult
from tests.machine.fakes import Fakes


class TestRun:
    def test_a_command_on_the_machines_path(self, fakes: Fakes) -> None:
        """A command is looked up on the machine's PATH; its output and status come back."""
        fakes.answer("systemctl", "show", stdout="LoadState=loaded\n", rc=3)
        result = fakes.machine("linux").run(["systemctl", "show", "ollama.service"])
        assert result == CommandResult(3, "LoadState=loaded\n", "")

    def test_a_missing_command_is_127(self, fakes: Fakes) -> None:
        """A command not on PATH is exit status 127, as a shell says, not an exception."""
        result = fakes.machine("linux").run(["no-such-command", "x"])
        assert result == CommandResult(127, "", "no-such-command: command not found")
