"""Service files for launchd and systemd, rendered from data, and the actions that install them."""

from __future__ import annotations

import math
import plistlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from proxy.config import CONFIG_ENV
from proxy.install.config_edit import masked

__all__ = [
    "ENV_LABEL",
    "OLLAMA_ADDRESS",
    "PROXY_ADDRESS",
    "PROXY_LABEL",
    "TAKEOVER_OLLAMA_ADDRESS",
    "UNIT_NAME",
    "Action",
    "InstallOptions",
    "MakeDir",
    "RemoveFile",
    "RunCommand",
    "Target",
    "WaitFor",
    "WriteConfig",
    "WriteFile",
    "addresses",
    "ollama_env",
    "render_dropin",
    "render_env_plist",
    "render_proxy_plist",
    "render_proxy_unit",
    "shell_line",
]

PROXY_LABEL = "com.ollama-lanes.proxy"
ENV_LABEL = "com.ollama-lanes.ollama-env"
UNIT_NAME = "ollama-lanes.service"
# "zz-" sorts after the "override.conf" that `systemctl edit ollama` writes, so ours wins.
DROPIN_NAME = "zz-lanes.conf"
OLLAMA_ADDRESS = "127.0.0.1:11434"
PROXY_ADDRESS = "127.0.0.1:11435"
TAKEOVER_OLLAMA_ADDRESS = "127.0.0.1:11436"
_HEREDOC = "LANES_EOF"
OPEN_FILES = 10240  # the daemon's open-file limit: waiting clients each hold a socket
_STOP_MARGIN_S = 15


@dataclass(frozen=True)
class Target:
    """Where and for whom the services are installed."""

    platform: str  # "darwin" or "linux"
    home: Path
    uid: int
    lanes_exe: Path  # absolute path of the installed `lanes`
    config_path: Path  # the proxy's TOML config file
    etc_root: Path = Path("/etc")
    drain_timeout_s: float = 30.0

    @property
    def launch_agents(self) -> Path:
        return self.home / "Library" / "LaunchAgents"

    @property
    def proxy_plist(self) -> Path:
        return self.launch_agents / f"{PROXY_LABEL}.plist"

    @property
    def env_plist(self) -> Path:
        return self.launch_agents / f"{ENV_LABEL}.plist"

    @property
    def log_dir(self) -> Path:
        return self.home / "Library" / "Logs" / "ollama-lanes"

    @property
    def unit_path(self) -> Path:
        return self.home / ".config" / "systemd" / "user" / UNIT_NAME

    @property
    def dropin_path(self) -> Path:
        return self.etc_root / "systemd" / "system" / "ollama.service.d" / DROPIN_NAME

    @property
    def stop_timeout_s(self) -> int:
        """Seconds launchd/systemd wait after SIGTERM: the proxy's drain plus a margin."""
        return math.ceil(self.drain_timeout_s) + _STOP_MARGIN_S


@dataclass(frozen=True)
class InstallOptions:
    """What `lanes install` was asked for."""

    lanes: int  # OLLAMA_NUM_PARALLEL (`--lanes N`); the proxy follows it (lanes = "auto")
    takeover: bool = False
    keep_alive: str | None = None
    max_queue: int | None = None


def addresses(takeover: bool) -> tuple[str, str]:
    """(proxy listen address, Ollama address) for the chosen mode."""
    if takeover:
        return OLLAMA_ADDRESS, TAKEOVER_OLLAMA_ADDRESS
    return PROXY_ADDRESS, OLLAMA_ADDRESS


def ollama_env(options: InstallOptions) -> dict[str, str]:
    """The variables Ollama's server must see, in a stable order."""
    env = {"OLLAMA_NUM_PARALLEL": str(options.lanes)}
    if options.takeover:
        env["OLLAMA_HOST"] = TAKEOVER_OLLAMA_ADDRESS
    if options.keep_alive is not None:
        env["OLLAMA_KEEP_ALIVE"] = options.keep_alive
    if options.max_queue is not None:
        env["OLLAMA_MAX_QUEUE"] = str(options.max_queue)
    return env


# --- actions: what an installer does, as data -------------------------------------------------


@dataclass(frozen=True)
class WriteFile:
    """Write `content` to `path`, creating parent folders."""

    path: Path
    content: bytes
    privileged: bool = False


@dataclass(frozen=True)
class WriteConfig(WriteFile):
    """Write the proxy's config file (performed by `config_edit.write_config`, its one writer)."""


@dataclass(frozen=True)
class RemoveFile:
    """Remove `path` if it exists."""

    path: Path
    privileged: bool = False


@dataclass(frozen=True)
class MakeDir:
    """Create a folder and its parents."""

    path: Path
    privileged: bool = False


@dataclass(frozen=True)
class RunCommand:
    """Run an external command; `may_fail` when failure means "already done"."""

    argv: tuple[str, ...]
    privileged: bool = False
    may_fail: bool = False


@dataclass(frozen=True)
class WaitFor:
    """Run `argv` every half second until it exits with `until_rc`, for at most `timeout_s`."""

    argv: tuple[str, ...]
    until_rc: int
    timeout_s: float
    privileged: bool = False


Action = WriteFile | RemoveFile | MakeDir | RunCommand | WaitFor


def shell_line(action: Action, *, sudo: bool = False) -> str:
    """The action as shell text a person could paste; file contents in a here-document."""
    prefix = "sudo " if sudo else ""
    if isinstance(action, WriteFile):
        path = shlex.quote(str(action.path))
        parent = shlex.quote(str(action.path.parent))
        text = action.content.decode("utf-8")
        if isinstance(action, WriteConfig):
            text = masked(text)  # a printed config never shows a token
        body = text if text.endswith("\n") else text + "\n"
        return (
            f"{prefix}mkdir -p {parent}\n"
            f"{prefix}tee {path} >/dev/null <<'{_HEREDOC}'\n{body}{_HEREDOC}"
        )
    if isinstance(action, RemoveFile):
        return f"{prefix}rm -f {shlex.quote(str(action.path))}"
    if isinstance(action, MakeDir):
        return f"{prefix}mkdir -p {shlex.quote(str(action.path))}"
    if isinstance(action, WaitFor):
        probe = prefix + shlex.join(action.argv)
        cond = "until" if action.until_rc == 0 else "while"
        return f"{cond} {probe} >/dev/null; do sleep 0.5; done  # at most {action.timeout_s:g} s"
    line = prefix + shlex.join(action.argv)
    return f"{line} || true" if action.may_fail else line


# --- launchd ----------------------------------------------------------------------------------


def render_proxy_plist(target: Target) -> bytes:
    """The LaunchAgent that keeps `lanes serve` running."""
    log = str(target.log_dir / "proxy.log")
    agent = {
        "Label": PROXY_LABEL,
        "ProgramArguments": [str(target.lanes_exe), "serve"],
        "EnvironmentVariables": {CONFIG_ENV: str(target.config_path), "PYTHONUNBUFFERED": "1"},
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ExitTimeOut": target.stop_timeout_s,
        # launchd's default soft limit (256) is too small for a queue of waiting clients.
        "SoftResourceLimits": {"NumberOfFiles": OPEN_FILES},
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML)


def render_env_plist(
    target: Target, env: Mapping[str, str], restart_label: str | None = None
) -> bytes:
    """The LaunchAgent that re-applies `launchctl setenv` at every login.

    The values live in the agent's own EnvironmentVariables, so the file states them as data
    and the script only copies them into launchd's user environment. When Ollama runs as a
    launchd job (brew services, a hand-made agent), the script then restarts that job so it
    sees the values even if it started first.
    """
    steps = [f'/bin/launchctl setenv {name} "${name}"' for name in env]
    if restart_label is not None:
        steps.append(f'/bin/launchctl kickstart -k "gui/$(/usr/bin/id -u)/{restart_label}"')
    agent = {
        "Label": ENV_LABEL,
        "ProgramArguments": ["/bin/sh", "-c", "; ".join(steps)],
        "EnvironmentVariables": dict(env),
        "RunAtLoad": True,
    }
    return plistlib.dumps(agent, fmt=plistlib.FMT_XML)


# --- systemd ----------------------------------------------------------------------------------


def _systemd_quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:=@%+-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_proxy_unit(target: Target) -> str:
    """The systemd --user unit that keeps `lanes serve` running."""
    env = _systemd_quote(f"{CONFIG_ENV}={target.config_path}")
    return (
        "# Written by `lanes install`; removed by `lanes uninstall`.\n"
        "[Unit]\n"
        "Description=ollama-lanes: fair-queue lane proxy in front of Ollama\n"
        "After=network.target\n"
        "\n"
        "[Service]\n"
        "Type=exec\n"
        f"ExecStart={_systemd_quote(str(target.lanes_exe))} serve\n"
        f"Environment={env}\n"
        "Environment=PYTHONUNBUFFERED=1\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "KillSignal=SIGTERM\n"
        f"TimeoutStopSec={target.stop_timeout_s}\n"
        f"LimitNOFILE={OPEN_FILES}\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def render_dropin(env: Mapping[str, str]) -> str:
    """The drop-in for ollama.service that sets Ollama's environment."""
    lines = [f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in env.items()]
    return (
        "# Written by `lanes install`; removed by `lanes uninstall`.\n"
        "[Service]\n" + "\n".join(lines) + "\n"
    )
