"""The installer's executor: it prints each action, performs it or leaves it for sudo."""

from __future__ import annotations

import io
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.install.executor import (
    InstallError,
    closing_lines,
    execute,
    make_target,
    prepare_target,
)
from proxy.install.service import (
    Action,
    RunCommand,
    WaitFor,
    WriteConfig,
    WriteFile,
)
from proxy.install.service_plan import Plan
from proxy.machine.machine import Machine
from tests.machine.fakes import Fakes


def run(fakes: Fakes, machine: Machine, *actions: Action, dry_run: bool = False) -> str:
    """Execute `actions` on `machine`; what the executor printed."""
    out = io.StringIO()
    target = make_target(machine, Path("/x/lanes"))
    execute(Plan(tuple(actions)), machine, target, dry_run, out)
    return out.getvalue()


class TestMakeTarget:
    def test_drain_timeout_from_the_config_file(self, fakes: Fakes) -> None:
        """The service's stop timeout follows [serve] drain_timeout_s."""
        machine = fakes.machine("linux")
        machine.config_path.parent.mkdir(parents=True)
        machine.config_path.write_text("[serve]\ndrain_timeout_s = 50\n")
        assert make_target(machine, Path("/x/lanes")).drain_timeout_s == 50.0

    def test_default_drain_timeout(self, fakes: Fakes) -> None:
        """Without a config file the proxy's default drain timeout is used."""
        assert make_target(fakes.machine("linux"), Path("/x/lanes")).drain_timeout_s == 30.0


class TestPrepareTarget:
    def test_other_platforms_are_refused(self, fakes: Fakes) -> None:
        """Only macOS and Linux have service plans."""
        with pytest.raises(InstallError, match="supports macOS and Linux, not win32"):
            prepare_target(replace(fakes.machine("linux"), platform="win32"))

    def test_the_installed_lanes_is_the_program(self, fakes: Fakes) -> None:
        """The target runs the `lanes` program found on the machine, by absolute path."""
        assert prepare_target(fakes.machine("linux")).lanes_exe.is_absolute()


class TestExecute:
    def test_dry_run_prints_and_performs_nothing(self, fakes: Fakes) -> None:
        """--dry-run prints each action as shell text; no file is written, no command run."""
        machine = fakes.machine("linux")
        path = fakes.root / "a" / "file"
        out = run(
            fakes, machine, WriteFile(path, b"x\n"), RunCommand(("systemctl", "x")), dry_run=True
        )
        assert f"tee {path} >/dev/null <<'LANES_EOF'\nx\nLANES_EOF\nsystemctl x\n" in out
        assert not path.exists()
        assert fakes.calls() == []

    def test_performs_in_order_and_says_what_it_did(self, fakes: Fakes) -> None:
        """Each action is performed, then summarised on its own line."""
        machine = fakes.machine("linux")
        path = fakes.root / "a" / "file"
        out = run(fakes, machine, WriteFile(path, b"x\n"), RunCommand(("systemctl", "x")))
        assert f"  wrote {path}\n  ran systemctl x\n" == out
        assert path.read_bytes() == b"x\n"
        assert fakes.calls() == [["systemctl", "x"]]

    def test_a_failing_command_stops_with_its_last_line(self, fakes: Fakes) -> None:
        """A command that fails (and may not) raises, naming it, its status and its output."""
        fakes.answer("systemctl", stdout="first\nunit not found\n", rc=5)
        with pytest.raises(InstallError) as caught:
            run(fakes, fakes.machine("linux"), RunCommand(("systemctl", "start", "x")))
        assert str(caught.value) == "`systemctl start x` failed with status 5: unit not found"

    def test_a_command_that_may_fail_does_not_stop(self, fakes: Fakes) -> None:
        """`may_fail` means "already done": its failure is not an error."""
        fakes.answer("systemctl", rc=5)
        out = run(fakes, fakes.machine("linux"), RunCommand(("systemctl", "stop"), may_fail=True))
        assert out == "  ran systemctl stop || true\n"

    def test_a_wait_that_never_ends_gives_up(self, fakes: Fakes) -> None:
        """A WaitFor whose condition does not come within its timeout raises."""
        fakes.answer("pgrep", rc=0)
        wait = WaitFor(("pgrep", "-x", "Ollama"), until_rc=1, timeout_s=0)
        with pytest.raises(InstallError, match="gave up after 0 s: while pgrep -x Ollama"):
            run(fakes, fakes.machine("darwin"), wait)

    def test_privileged_steps_are_left_to_the_user(self, fakes: Fakes) -> None:
        """Not root: a privileged action is returned, not performed."""
        machine = fakes.machine("linux", is_root=False)
        action = RunCommand(("systemctl", "restart", "ollama.service"), privileged=True)
        target = make_target(machine, Path("/x/lanes"))
        pending = execute(Plan((action,)), machine, target, False, io.StringIO())
        assert [action] == pending
        assert fakes.calls() == []

    def test_the_config_file_keeps_its_permissions(self, fakes: Fakes) -> None:
        """Rewriting a private (0600) config file leaves it private, with the new text."""
        machine = fakes.machine("linux")
        config = machine.config_path
        config.parent.mkdir(parents=True)
        config.write_text("[serve]\n")
        config.chmod(0o600)
        run(fakes, machine, WriteConfig(config, b"[serve]\nlanes = 2\n"))
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert config.read_text() == "[serve]\nlanes = 2\n"


class TestClosingLines:
    def test_notes_then_the_steps_left_for_sudo(self) -> None:
        """The plan's notes come first, then the privileged steps as sudo command lines."""
        pending: list[Action] = [RunCommand(("systemctl", "daemon-reload"), privileged=True)]
        plan = Plan((), ("Mind the gap.",))
        assert closing_lines(plan, pending, dry_run=False) == [
            "Note: Mind the gap.",
            "Not finished: these steps need root. Run them, then `lanes doctor`:",
            "sudo systemctl daemon-reload",
        ]

    def test_dry_run_notes_are_comments(self) -> None:
        """In a dry run the notes are shell comments, so the output can be pasted."""
        assert closing_lines(Plan((), ("Mind the gap.",)), [], True) == ["# Note: Mind the gap."]
