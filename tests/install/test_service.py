"""Rendered launchd agents and systemd units: parsed back, with exact keys and values."""

from __future__ import annotations

import plistlib
from pathlib import Path

from proxy.install.service import (
    ENV_LABEL,
    PROXY_LABEL,
    InstallOptions,
    RemoveFile,
    RunCommand,
    Target,
    WaitFor,
    WriteFile,
    addresses,
    ollama_env,
    render_dropin,
    render_env_plist,
    render_proxy_plist,
    render_proxy_unit,
    shell_line,
)

MAC = Target(
    platform="darwin",
    home=Path("/Users/bob"),
    uid=502,
    lanes_exe=Path("/opt/lanes env/bin/lanes"),
    config_path=Path("/Users/bob/Library/Application Support/ollama-lanes/config.toml"),
    drain_timeout_s=12.5,
)


class TestProxyPlist:
    def test_exact_keys_and_values(self) -> None:
        """The proxy agent runs `lanes serve` by absolute path, restarts on crash, logs, drains."""
        agent = plistlib.loads(render_proxy_plist(MAC))
        assert agent == {
            "Label": PROXY_LABEL,
            "ProgramArguments": ["/opt/lanes env/bin/lanes", "serve"],
            "EnvironmentVariables": {
                "LANES_CONFIG": "/Users/bob/Library/Application Support/ollama-lanes/config.toml",
                "PYTHONUNBUFFERED": "1",
            },
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "ExitTimeOut": 28,
            "SoftResourceLimits": {"NumberOfFiles": 10240},
            "StandardOutPath": "/Users/bob/Library/Logs/ollama-lanes/proxy.log",
            "StandardErrorPath": "/Users/bob/Library/Logs/ollama-lanes/proxy.log",
        }

    def test_program_path_is_absolute_and_exit_timeout_above_drain(self) -> None:
        """launchd needs an absolute program; it must wait longer than the proxy drains."""
        agent = plistlib.loads(render_proxy_plist(MAC))
        assert Path(agent["ProgramArguments"][0]).is_absolute()
        assert agent["ExitTimeOut"] > MAC.drain_timeout_s


class TestEnvPlist:
    def test_sets_each_variable_from_its_own_environment(self) -> None:
        """The env agent carries the values as data and copies them with launchctl setenv."""
        env = ollama_env(InstallOptions(3, takeover=True, keep_alive="10m", max_queue=64))
        agent = plistlib.loads(render_env_plist(MAC, env))
        script = (
            '/bin/launchctl setenv OLLAMA_NUM_PARALLEL "$OLLAMA_NUM_PARALLEL"; '
            '/bin/launchctl setenv OLLAMA_HOST "$OLLAMA_HOST"; '
            '/bin/launchctl setenv OLLAMA_KEEP_ALIVE "$OLLAMA_KEEP_ALIVE"; '
            '/bin/launchctl setenv OLLAMA_MAX_QUEUE "$OLLAMA_MAX_QUEUE"'
        )
        assert {
            "Label": ENV_LABEL,
            "ProgramArguments": ["/bin/sh", "-c", script],
            "EnvironmentVariables": {
                "OLLAMA_NUM_PARALLEL": "3",
                "OLLAMA_HOST": "127.0.0.1:11436",
                "OLLAMA_KEEP_ALIVE": "10m",
                "OLLAMA_MAX_QUEUE": "64",
            },
            "RunAtLoad": True,
        } == agent

    def test_restarts_a_launchd_ollama_after_setting(self) -> None:
        """For brew services, the agent restarts brew's job so it sees the values at login."""
        agent = plistlib.loads(
            render_env_plist(MAC, {"OLLAMA_NUM_PARALLEL": "2"}, "homebrew.mxcl.ollama")
        )
        assert agent["ProgramArguments"][2].endswith(
            '; /bin/launchctl kickstart -k "gui/$(/usr/bin/id -u)/homebrew.mxcl.ollama"'
        )
        assert agent["ProgramArguments"][0] == "/bin/sh"


class TestSystemd:
    def test_unit_quotes_paths_and_stops_after_drain(self) -> None:
        """ExecStart quotes a path with spaces; TimeoutStopSec exceeds the drain timeout."""
        unit = render_proxy_unit(MAC)
        assert 'ExecStart="/opt/lanes env/bin/lanes" serve\n' in unit
        assert (
            'Environment="LANES_CONFIG=/Users/bob/Library/Application Support/'
            'ollama-lanes/config.toml"\n'
        ) in unit
        assert "Restart=on-failure\n" in unit
        assert "TimeoutStopSec=28\n" in unit
        assert "WantedBy=default.target\n" in unit

    def test_dropin_sets_the_environment(self) -> None:
        """The ollama.service drop-in carries one Environment= line per variable."""
        text = render_dropin({"OLLAMA_NUM_PARALLEL": "4", "OLLAMA_HOST": "127.0.0.1:11436"})
        assert text.endswith(
            "[Service]\n"
            "Environment=OLLAMA_NUM_PARALLEL=4\n"
            "Environment=OLLAMA_HOST=127.0.0.1:11436\n"
        )


class TestModes:
    def test_addresses(self) -> None:
        """Takeover swaps the proxy onto Ollama's port and moves Ollama to 11436."""
        assert addresses(takeover=False) == ("127.0.0.1:11435", "127.0.0.1:11434")
        assert addresses(takeover=True) == ("127.0.0.1:11434", "127.0.0.1:11436")

    def test_env_only_names_what_was_asked(self) -> None:
        """Without takeover or extras only NUM_PARALLEL is set."""
        assert ollama_env(InstallOptions(2)) == {"OLLAMA_NUM_PARALLEL": "2"}


class TestShellLine:
    def test_forms(self) -> None:
        """Each action prints as shell a person could paste, with sudo when asked."""
        write = WriteFile(Path("/etc/x y/a.conf"), b"[Service]\n", privileged=True)
        assert shell_line(write, sudo=True) == (
            "sudo mkdir -p '/etc/x y'\nsudo tee '/etc/x y/a.conf' >/dev/null <<'LANES_EOF'\n"
            "[Service]\nLANES_EOF"
        )
        assert shell_line(RemoveFile(Path("/tmp/a"))) == "rm -f /tmp/a"
        assert (
            shell_line(RunCommand(("launchctl", "bootout", "gui/1/x"), may_fail=True))
            == "launchctl bootout gui/1/x || true"
        )
        assert shell_line(WaitFor(("pgrep", "-x", "Ollama"), 1, 20)).startswith(
            "while pgrep -x Ollama >/dev/null; do sleep 0.5; done"
        )
