"""`lanes install` / `lanes uninstall` with fake launchctl, systemctl, open, osascript, brew.

Each test runs the real command code against a patched machine (tmp home, tmp /etc, a given
platform) whose PATH holds only recording fakes, then compares the exact command sequence
and the files left behind. `--no-wait` skips the wait for Ollama and the proxy: the fake
`launchctl bootstrap` starts nothing (the wait itself is tested against real servers).
"""

from __future__ import annotations

import argparse
import io
import plistlib
import stat
import tomllib
from pathlib import Path

import pytest

from proxy.commands import install, uninstall
from proxy.install.executor import make_target
from proxy.install.lanes_exe import find_lanes_exe
from proxy.install.service import render_proxy_plist
from tests.machine.fakes import Fakes

BREW_LIST = (
    "Name   Status  User File\n"
    "ollama started bob  ~/Library/LaunchAgents/homebrew.mxcl.ollama.plist\n"
)


def parse(*argv: str) -> argparse.Namespace:
    """`argv` parsed by the `install` and `uninstall` subcommands' own flags."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    install.register(sub)
    uninstall.register(sub)
    return parser.parse_args(argv)


def run(fakes: Fakes, platform: str, *argv: str, is_root: bool = True) -> tuple[int, str]:
    """Run `lanes <argv>` on a fake machine; (exit status, stdout)."""
    machine = fakes.machine(platform, is_root=is_root)
    out = io.StringIO()
    args = parse(*argv)
    if argv[0] == "install":
        return install.run_install(args, machine, out), out.getvalue()
    return uninstall.run_uninstall(args, machine, out), out.getvalue()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (content) and folder (None) under root."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def app_running(fakes: Fakes) -> None:
    """Ollama.app runs once (detection), then has quit by the next look."""
    fakes.answer("pgrep", "-x", "Ollama", rc=0, times=1)
    fakes.answer("pgrep", "-x", "Ollama", rc=1, times=1)


class TestMacInstall:
    def test_install_with_the_app(self, fakes: Fakes) -> None:
        """Writes config and both agents, (re)loads them, sets env now, restarts the app."""
        app_running(fakes)
        status, out = run(fakes, "darwin", "install", "--lanes", "4", "--no-wait")
        agents = f"{fakes.root}/home/Library/LaunchAgents"
        assert status == 0
        assert [
            ["pgrep", "-x", "Ollama"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.proxy"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.ollama-env"],
            ["launchctl", "bootstrap", "gui/501", f"{agents}/com.ollama-lanes.ollama-env.plist"],
            ["launchctl", "setenv", "OLLAMA_NUM_PARALLEL", "4"],
            ["osascript", "-e", 'quit app "Ollama"'],
            ["pgrep", "-x", "Ollama"],
            ["open", "-a", "Ollama"],
            ["launchctl", "bootstrap", "gui/501", f"{agents}/com.ollama-lanes.proxy.plist"],
        ] == fakes.calls()
        files = tree(fakes.root / "home")
        assert {
            "Library",
            "Library/Application Support",
            "Library/Application Support/ollama-lanes",
            "Library/Application Support/ollama-lanes/config.toml",
            "Library/LaunchAgents",
            "Library/LaunchAgents/com.ollama-lanes.ollama-env.plist",
            "Library/LaunchAgents/com.ollama-lanes.proxy.plist",
            "Library/Logs",
            "Library/Logs/ollama-lanes",
        } == set(files)
        env = plistlib.loads(files["Library/LaunchAgents/com.ollama-lanes.ollama-env.plist"] or b"")
        assert env["EnvironmentVariables"] == {"OLLAMA_NUM_PARALLEL": "4"}
        proxy = plistlib.loads(files["Library/LaunchAgents/com.ollama-lanes.proxy.plist"] or b"")
        assert str(find_lanes_exe(fakes.machine("darwin"))) == proxy["ProgramArguments"][0]
        assert b'lanes = "auto"  # lanes install\nlisten = "127.0.0.1:11435"' in (
            files["Library/Application Support/ollama-lanes/config.toml"] or b""
        )
        assert "To undo: lanes uninstall" in out

    def test_install_again_keeps_the_num_parallel_installed(self, fakes: Fakes) -> None:
        """Without --lanes, a second install sets the NUM_PARALLEL its env agent holds."""
        fakes.answer("pgrep", rc=1)
        assert run(fakes, "darwin", "install", "--lanes", "6", "--no-wait")[0] == 0
        fakes.calls()
        assert run(fakes, "darwin", "install", "--no-wait")[0] == 0
        assert ["launchctl", "setenv", "OLLAMA_NUM_PARALLEL", "6"] in fakes.calls()

    def test_second_install_same_commands_same_files(self, fakes: Fakes) -> None:
        """Installing twice runs the same commands and leaves the same files as once."""
        app_running(fakes)
        app_running(fakes)
        assert run(fakes, "darwin", "install", "--lanes", "3", "--no-wait")[0] == 0
        first_calls, first_files = fakes.calls(), tree(fakes.root / "home")
        assert run(fakes, "darwin", "install", "--lanes", "3", "--no-wait")[0] == 0
        assert first_calls == fakes.calls()
        assert first_files == tree(fakes.root / "home")

    def test_takeover_under_brew_services(self, fakes: Fakes) -> None:
        """Takeover sets OLLAMA_HOST too; brew's job is restarted by brew; both traps noted."""
        fakes.answer("pgrep", rc=1)
        fakes.answer("brew", "services", "list", stdout=BREW_LIST)
        status, out = run(fakes, "darwin", "install", "--lanes", "2", "--takeover", "--no-wait")
        agents = f"{fakes.root}/home/Library/LaunchAgents"
        assert status == 0
        assert [
            ["pgrep", "-x", "Ollama"],
            ["brew", "services", "list"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.proxy"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.ollama-env"],
            ["launchctl", "bootstrap", "gui/501", f"{agents}/com.ollama-lanes.ollama-env.plist"],
            ["launchctl", "setenv", "OLLAMA_NUM_PARALLEL", "2"],
            ["launchctl", "setenv", "OLLAMA_HOST", "127.0.0.1:11436"],
            ["brew", "services", "restart", "ollama"],
            ["launchctl", "bootstrap", "gui/501", f"{agents}/com.ollama-lanes.proxy.plist"],
        ] == fakes.calls()
        env = plistlib.loads(Path(agents, "com.ollama-lanes.ollama-env.plist").read_bytes())
        assert "kickstart -k" in env["ProgramArguments"][2]
        assert "Expose Ollama to the network" in out
        assert "drops any EnvironmentVariables" in out
        assert "point clients at http://127.0.0.1:11434" in out

    def test_leaving_takeover_unsets_ollama_host(self, fakes: Fakes) -> None:
        """A plain install after a takeover install unsets OLLAMA_HOST, so Ollama moves back."""
        fakes.answer("pgrep", rc=1)
        run(fakes, "darwin", "install", "--lanes", "2", "--takeover", "--no-wait")
        fakes.calls()
        run(fakes, "darwin", "install", "--lanes", "2", "--no-wait")
        calls = fakes.calls()
        assert ["launchctl", "unsetenv", "OLLAMA_HOST"] in calls
        assert calls.index(["launchctl", "unsetenv", "OLLAMA_HOST"]) < calls.index(
            ["launchctl", "setenv", "OLLAMA_NUM_PARALLEL", "2"]
        )

    def test_uninstall_reverses_everything_and_is_idempotent(self, fakes: Fakes) -> None:
        """Uninstall boots out and removes both agents, unsets, restores config, restarts."""
        app_running(fakes)
        app_running(fakes)
        home = fakes.root / "home"
        config = home / "Library/Application Support/ollama-lanes/config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("[serve]\nmax_queue = 5\n")
        run(fakes, "darwin", "install", "--lanes", "4", "--takeover", "--no-wait")
        fakes.calls()
        status, _out = run(fakes, "darwin", "uninstall")
        assert status == 0
        assert fakes.calls() == [
            ["pgrep", "-x", "Ollama"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.proxy"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.ollama-env"],
            ["launchctl", "unsetenv", "OLLAMA_HOST"],
            ["launchctl", "unsetenv", "OLLAMA_NUM_PARALLEL"],
            ["osascript", "-e", 'quit app "Ollama"'],
            ["pgrep", "-x", "Ollama"],
            ["open", "-a", "Ollama"],
        ]
        assert not (home / "Library/LaunchAgents/com.ollama-lanes.proxy.plist").exists()
        assert not (home / "Library/LaunchAgents/com.ollama-lanes.ollama-env.plist").exists()
        assert config.read_text() == "[serve]\nmax_queue = 5\n"
        before = tree(home)
        assert run(fakes, "darwin", "uninstall")[0] == 0
        assert fakes.calls() == [
            ["pgrep", "-x", "Ollama"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.proxy"],
            ["launchctl", "bootout", "gui/501/com.ollama-lanes.ollama-env"],
        ]
        assert before == tree(home)

    def test_dry_run_prints_everything_and_writes_nothing(self, fakes: Fakes) -> None:
        """--dry-run shows every file and command; only read-only detection runs."""
        app_running(fakes)
        status, out = run(fakes, "darwin", "install", "--lanes", "4", "--dry-run")
        assert status == 0
        assert fakes.calls() == [["pgrep", "-x", "Ollama"]]
        assert tree(fakes.root / "home") == {}
        machine = fakes.machine("darwin")
        exe = find_lanes_exe(machine)
        assert exe is not None
        assert render_proxy_plist(make_target(machine, exe)).decode() in out
        assert "launchctl setenv OLLAMA_NUM_PARALLEL 4\n" in out
        assert "open -a Ollama\n" in out

    def test_a_token_stays_private_and_is_never_printed(self, fakes: Fakes) -> None:
        """With a token in a 0600 config, install keeps it 0600; --dry-run shows stars, and no
        service file or command line carries the token."""
        app_running(fakes)
        app_running(fakes)
        home = fakes.root / "home"
        config = home / "Library/Application Support/ollama-lanes/config.toml"
        config.parent.mkdir(parents=True)
        config.write_text('[serve]\nauth_token = "s3cret-tok"\n')
        config.chmod(0o600)
        status, out = run(fakes, "darwin", "install", "--lanes", "4", "--dry-run")
        assert status == 0
        assert "s3cret-tok" not in out
        assert 'auth_token = "********"' in out
        status, out = run(fakes, "darwin", "install", "--lanes", "4", "--no-wait")
        assert status == 0
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert 'auth_token = "s3cret-tok"' in config.read_text()
        written = [p for p in home.rglob("*") if p.is_file() and p != config]
        assert written
        assert all(b"s3cret-tok" not in p.read_bytes() for p in written)
        assert all("s3cret-tok" not in " ".join(call) for call in fakes.calls())
        assert "s3cret-tok" not in out

    def test_uninstall_dry_run_writes_nothing(self, fakes: Fakes) -> None:
        """uninstall --dry-run after an install leaves every file in place."""
        fakes.answer("pgrep", rc=1)
        run(fakes, "darwin", "install", "--lanes", "4", "--no-wait")
        before = tree(fakes.root / "home")
        fakes.calls()
        status, out = run(fakes, "darwin", "uninstall", "--dry-run")
        assert status == 0
        assert fakes.calls() == [["pgrep", "-x", "Ollama"], ["brew", "services", "list"]]
        assert before == tree(fakes.root / "home")
        assert "launchctl unsetenv OLLAMA_NUM_PARALLEL\n" in out


def systemd_loaded(fakes: Fakes) -> None:
    fakes.answer("systemctl", "show", "ollama.service", stdout="LoadState=loaded\n")


USER_UNIT = ["systemctl", "--user"]


class TestLinuxInstall:
    def test_install_as_root_writes_dropin_and_restarts(self, fakes: Fakes) -> None:
        """A user unit for the proxy, a drop-in for ollama.service, reload and restarts."""
        systemd_loaded(fakes)
        status, _ = run(
            fakes, "linux", "install", "--lanes", "4", "--keep-alive", "1h", "--no-wait"
        )
        assert status == 0
        assert [
            ["systemctl", "show", "ollama.service", "--property=LoadState"],
            [*USER_UNIT, "daemon-reload"],
            [*USER_UNIT, "stop", "ollama-lanes.service"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "restart", "ollama.service"],
            [*USER_UNIT, "enable", "ollama-lanes.service"],
            [*USER_UNIT, "restart", "ollama-lanes.service"],
        ] == fakes.calls()
        dropin = fakes.root / "etc/systemd/system/ollama.service.d/zz-lanes.conf"
        assert dropin.read_text().endswith(
            "[Service]\nEnvironment=OLLAMA_NUM_PARALLEL=4\nEnvironment=OLLAMA_KEEP_ALIVE=1h\n"
        )
        unit = (fakes.root / "home/.config/systemd/user/ollama-lanes.service").read_text()
        assert f"ExecStart={find_lanes_exe(fakes.machine('linux'))} serve\n" in unit

    def test_install_again_keeps_the_num_parallel_installed(self, fakes: Fakes) -> None:
        """Without --lanes, a second install keeps the NUM_PARALLEL of the drop-in it wrote."""
        systemd_loaded(fakes)
        assert run(fakes, "linux", "install", "--lanes", "5", "--no-wait")[0] == 0
        assert run(fakes, "linux", "install", "--no-wait")[0] == 0
        dropin = fakes.root / "etc/systemd/system/ollama.service.d/zz-lanes.conf"
        assert "Environment=OLLAMA_NUM_PARALLEL=5\n" in dropin.read_text()

    def test_a_hand_set_lanes_becomes_num_parallel_and_auto(self, fakes: Fakes) -> None:
        """A config from before the lane map (`lanes = 3`): Ollama gets NUM_PARALLEL 3, the
        proxy "auto", and uninstall gives the file back as it was."""
        systemd_loaded(fakes)
        config = fakes.root / "home/.config/ollama-lanes/config.toml"
        config.parent.mkdir(parents=True)
        config.write_text("[serve]\nlanes = 3\n")
        assert run(fakes, "linux", "install", "--no-wait")[0] == 0
        dropin = fakes.root / "etc/systemd/system/ollama.service.d/zz-lanes.conf"
        assert "Environment=OLLAMA_NUM_PARALLEL=3\n" in dropin.read_text()
        assert tomllib.loads(config.read_text())["serve"]["lanes"] == "auto"
        assert run(fakes, "linux", "uninstall")[0] == 0
        assert config.read_text() == "[serve]\nlanes = 3\n"

    def test_not_root_prints_the_exact_sudo_commands(self, fakes: Fakes) -> None:
        """Without root the system steps are printed for sudo, not run, and nothing is written."""
        systemd_loaded(fakes)
        status, out = run(
            fakes, "linux", "install", "--lanes", "4", "--takeover", "--no-wait", is_root=False
        )
        dropin = fakes.root / "etc/systemd/system/ollama.service.d/zz-lanes.conf"
        assert status == 0
        assert not dropin.exists()
        assert ["systemctl", "daemon-reload"] not in fakes.calls()
        assert (
            f"sudo mkdir -p {dropin.parent}\n"
            f"sudo tee {dropin} >/dev/null <<'LANES_EOF'\n"
            "# Written by `lanes install`; removed by `lanes uninstall`.\n"
            "[Service]\n"
            "Environment=OLLAMA_NUM_PARALLEL=4\n"
            "Environment=OLLAMA_HOST=127.0.0.1:11436\n"
            "LANES_EOF\n"
            "sudo systemctl daemon-reload\n"
            "sudo systemctl restart ollama.service\n"
        ) in out

    def test_uninstall_removes_unit_and_dropin_then_is_idempotent(self, fakes: Fakes) -> None:
        """Uninstall stops and removes the unit, removes the drop-in and restarts Ollama."""
        systemd_loaded(fakes)
        run(fakes, "linux", "install", "--lanes", "4", "--takeover", "--no-wait")
        fakes.calls()
        assert run(fakes, "linux", "uninstall")[0] == 0
        assert [
            ["systemctl", "show", "ollama.service", "--property=LoadState"],
            [*USER_UNIT, "disable", "--now", "ollama-lanes.service"],
            [*USER_UNIT, "daemon-reload"],
            ["systemctl", "daemon-reload"],
            ["systemctl", "restart", "ollama.service"],
        ] == fakes.calls()
        assert {k: v for k, v in tree(fakes.root / "home").items() if v is not None} == {}
        assert not (fakes.root / "etc/systemd/system/ollama.service.d/zz-lanes.conf").exists()
        assert run(fakes, "linux", "uninstall")[0] == 0
        assert [
            ["systemctl", "show", "ollama.service", "--property=LoadState"],
            [*USER_UNIT, "disable", "--now", "ollama-lanes.service"],
        ] == fakes.calls()

    def test_uninstall_not_root_prints_sudo_and_keeps_the_dropin(self, fakes: Fakes) -> None:
        """Without root the drop-in's removal and Ollama's restart are printed for sudo."""
        systemd_loaded(fakes)
        run(fakes, "linux", "install", "--lanes", "4", "--no-wait")
        fakes.calls()
        status, out = run(fakes, "linux", "uninstall", is_root=False)
        dropin = fakes.root / "etc/systemd/system/ollama.service.d/zz-lanes.conf"
        assert status == 0
        assert dropin.exists()
        assert ["systemctl", "restart", "ollama.service"] not in fakes.calls()
        assert (
            f"sudo rm -f {dropin}\nsudo systemctl daemon-reload\n"
            "sudo systemctl restart ollama.service\n"
        ) in out

    def test_dry_run_writes_nothing(self, fakes: Fakes) -> None:
        """--dry-run on Linux prints the unit and drop-in and touches no file."""
        systemd_loaded(fakes)
        status, out = run(fakes, "linux", "install", "--lanes", "2", "--dry-run")
        assert status == 0
        assert fakes.calls() == [["systemctl", "show", "ollama.service", "--property=LoadState"]]
        assert not (fakes.root / "home").exists()
        assert not (fakes.root / "etc").exists()
        assert "Environment=OLLAMA_NUM_PARALLEL=2\n" in out
        assert "systemctl --user restart ollama-lanes.service\n" in out

    def test_failing_command_stops_with_its_message(self, fakes: Fakes) -> None:
        """A command that fails (and may not) stops the install with status 1."""
        systemd_loaded(fakes)
        fakes.answer("systemctl", "--user", "daemon-reload", rc=1)
        assert run(fakes, "linux", "install", "--lanes", "2", "--no-wait")[0] == 1
        assert [*USER_UNIT, "enable", "ollama-lanes.service"] not in fakes.calls()


class TestArguments:
    def test_bad_keep_alive_is_refused_with_the_reason(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--keep-alive that Ollama would refuse stops the parser with the reason (status 2)."""
        with pytest.raises(SystemExit) as stopped:
            parse("install", "--keep-alive", "10d")
        assert stopped.value.code == 2
        assert (
            "argument --keep-alive: '10d' is not a duration such as 5m" in capsys.readouterr().err
        )

    def test_lanes_range(self) -> None:
        """--lanes takes 1 to 256."""
        with pytest.raises(SystemExit):
            parse("install", "--lanes", "0")
        assert parse("install", "--lanes", "256").lanes == 256

    def test_max_queue_is_a_positive_whole_number(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--max-queue 0 stops the parser with the reason."""
        with pytest.raises(SystemExit):
            parse("install", "--max-queue", "0")
        assert "argument --max-queue: '0' is not a whole number above 0" in capsys.readouterr().err
