"""Install and uninstall plans: the ordered actions for launchd or systemd, decided from facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from proxy.install.config_edit import install_config, restore_config
from proxy.install.service import (
    ENV_LABEL,
    PROXY_LABEL,
    UNIT_NAME,
    Action,
    InstallOptions,
    MakeDir,
    RemoveFile,
    RunCommand,
    Target,
    WaitFor,
    WriteConfig,
    WriteFile,
    addresses,
    ollama_env,
    render_dropin,
    render_env_plist,
    render_proxy_plist,
    render_proxy_unit,
)

__all__ = ["BREW_LABEL", "Launch", "Plan", "Situation", "plan_install", "plan_uninstall"]

BREW_LABEL = "homebrew.mxcl.ollama"
APP_QUIT_TIMEOUT_S = 20.0

# How Ollama's server is started: on macOS by the app, by `brew services`, by another
# LaunchAgent running `ollama serve`, or not at all; on Linux by systemd's ollama.service.
Launch = Literal["app", "brew", "agent", "systemd", "none"]


@dataclass(frozen=True)
class Situation:
    """What the installer found on the machine before acting."""

    launch: Launch = "none"
    agent_label: str | None = None  # the LaunchAgent that runs `ollama serve`, when "agent"
    config_text: str | None = None  # the proxy's config file, None when absent
    installed_env: Mapping[str, str] = field(default_factory=dict)  # what our agent sets now
    existing: frozenset[Path] = frozenset()  # those of our files that exist now


@dataclass(frozen=True)
class Plan:
    """Actions in order, and sentences for the person running the installer."""

    actions: tuple[Action, ...]
    notes: tuple[str, ...] = ()


def _config_values(options: InstallOptions) -> dict[str, str | int]:
    """The proxy's [serve] values: its lanes follow Ollama's NUM_PARALLEL (`options.lanes`),
    read from the running Ollama, so a number here would only cap them."""
    listen, ollama = addresses(options.takeover)
    return {"lanes": "auto", "listen": listen, "upstream": f"http://{ollama}"}


def _launchctl(target: Target, verb: str, what: str, *, may_fail: bool = False) -> RunCommand:
    domain = f"gui/{target.uid}"
    argv = (
        ("launchctl", verb, domain, what)
        if verb == "bootstrap"
        else ("launchctl", verb, f"{domain}/{what}")
    )
    return RunCommand(argv, may_fail=may_fail)


def _restart_ollama_macos(target: Target, situation: Situation) -> tuple[list[Action], list[str]]:
    if situation.launch == "app":
        return [
            RunCommand(("osascript", "-e", 'quit app "Ollama"')),
            WaitFor(("pgrep", "-x", "Ollama"), until_rc=1, timeout_s=APP_QUIT_TIMEOUT_S),
            RunCommand(("open", "-a", "Ollama")),
        ], []
    if situation.launch == "brew":
        return [RunCommand(("brew", "services", "restart", "ollama"))], [
            "Ollama runs under `brew services`: `brew services restart ollama` regenerates "
            f"~/Library/LaunchAgents/{BREW_LABEL}.plist and drops any EnvironmentVariables "
            "added to it, so do not edit that file; the settings live in launchd's user "
            f"environment instead, re-applied at login by {ENV_LABEL}."
        ]
    if situation.launch == "agent" and situation.agent_label:
        return [
            RunCommand(
                ("launchctl", "kickstart", "-k", f"gui/{target.uid}/{situation.agent_label}")
            )
        ], []
    return [], [
        "Ollama is not running; it picks up the settings when it next starts (open -a Ollama)."
    ]


def _restart_label(situation: Situation) -> str | None:
    if situation.launch == "brew":
        return BREW_LABEL
    if situation.launch == "agent":
        return situation.agent_label
    return None


def _config_install(target: Target, options: InstallOptions, situation: Situation) -> WriteConfig:
    text = install_config(situation.config_text or "", _config_values(options))
    return WriteConfig(target.config_path, text.encode())


def _config_uninstall(target: Target, situation: Situation) -> list[Action]:
    if situation.config_text is None:
        return []
    restored = restore_config(situation.config_text)
    if restored == situation.config_text:
        return []
    if not restored:
        return [RemoveFile(target.config_path)]
    return [WriteConfig(target.config_path, restored.encode())]


def plan_install(target: Target, options: InstallOptions, situation: Situation) -> Plan:
    """Everything `lanes install` does, in order; running it twice gives the same state."""
    env = ollama_env(options)
    notes: list[str] = []
    if target.platform == "darwin":
        restart, notes = _restart_ollama_macos(target, situation)
        actions: list[Action] = [
            _config_install(target, options, situation),
            MakeDir(target.log_dir),
            WriteFile(target.env_plist, render_env_plist(target, env, _restart_label(situation))),
            WriteFile(target.proxy_plist, render_proxy_plist(target)),
            _launchctl(target, "bootout", PROXY_LABEL, may_fail=True),
            _launchctl(target, "bootout", ENV_LABEL, may_fail=True),
            _launchctl(target, "bootstrap", str(target.env_plist)),
            *(
                RunCommand(("launchctl", "unsetenv", name))
                for name in situation.installed_env
                if name not in env
            ),
            *(RunCommand(("launchctl", "setenv", name, value)) for name, value in env.items()),
            *restart,
            _launchctl(target, "bootstrap", str(target.proxy_plist)),
        ]
        if options.takeover:
            notes.append(
                "Ollama.app's setting 'Expose Ollama to the network' overrides OLLAMA_HOST "
                "(it binds 0.0.0.0:11434); turn it off, or the app and the proxy both claim "
                "port 11434."
            )
        return Plan(tuple(actions), tuple(notes))
    actions = [
        _config_install(target, options, situation),
        WriteFile(target.unit_path, render_proxy_unit(target).encode()),
        RunCommand(("systemctl", "--user", "daemon-reload")),
        # Stop the proxy first: in takeover mode Ollama's old port must be free to move.
        RunCommand(("systemctl", "--user", "stop", UNIT_NAME), may_fail=True),
    ]
    if situation.launch == "systemd":
        actions += [
            WriteFile(target.dropin_path, render_dropin(env).encode(), privileged=True),
            RunCommand(("systemctl", "daemon-reload"), privileged=True),
            RunCommand(("systemctl", "restart", "ollama.service"), privileged=True),
        ]
    else:
        assignments = " ".join(f"{k}={v}" for k, v in env.items())
        notes.append(
            "systemd knows no ollama.service, so set Ollama's environment wherever you start "
            f"it, e.g. `{assignments} ollama serve`."
        )
    actions += [
        RunCommand(("systemctl", "--user", "enable", UNIT_NAME)),
        RunCommand(("systemctl", "--user", "restart", UNIT_NAME)),
    ]
    notes.append("To start the proxy at boot without logging in: `loginctl enable-linger $USER`.")
    return Plan(tuple(actions), tuple(notes))


def plan_uninstall(target: Target, situation: Situation) -> Plan:
    """Everything `lanes uninstall` does: reverses `plan_install`; running it twice is harmless."""
    installed = bool(situation.existing)
    if target.platform == "darwin":
        restart, notes = _restart_ollama_macos(target, situation) if installed else ([], [])
        actions: list[Action] = [_launchctl(target, "bootout", PROXY_LABEL, may_fail=True)]
        if target.proxy_plist in situation.existing:
            actions.append(RemoveFile(target.proxy_plist))
        actions.append(_launchctl(target, "bootout", ENV_LABEL, may_fail=True))
        if target.env_plist in situation.existing:
            actions.append(RemoveFile(target.env_plist))
        actions += [RunCommand(("launchctl", "unsetenv", name)) for name in situation.installed_env]
        actions += _config_uninstall(target, situation)
        actions += restart
        notes = [*notes, f"Logs are kept in {target.log_dir}."]
        return Plan(tuple(actions), tuple(notes))
    actions = [RunCommand(("systemctl", "--user", "disable", "--now", UNIT_NAME), may_fail=True)]
    if target.unit_path in situation.existing:
        actions += [
            RemoveFile(target.unit_path),
            RunCommand(("systemctl", "--user", "daemon-reload")),
        ]
    if target.dropin_path in situation.existing:
        actions += [
            RemoveFile(target.dropin_path, privileged=True),
            RunCommand(("systemctl", "daemon-reload"), privileged=True),
        ]
        if situation.launch == "systemd":
            actions.append(RunCommand(("systemctl", "restart", "ollama.service"), privileged=True))
    actions += _config_uninstall(target, situation)
    return Plan(tuple(actions), ())
