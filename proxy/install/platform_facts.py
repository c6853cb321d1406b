"""Facts read from the machine for the installer and the doctor: how Ollama starts, our files."""

from __future__ import annotations

import plistlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

from proxy.config import SettingsError, load_settings
from proxy.install.config_edit import read_config
from proxy.install.doctor_facts import InstalledService, LaneSettings
from proxy.install.service import (
    ENV_LABEL,
    OLLAMA_ADDRESS,
    PROXY_ADDRESS,
    PROXY_LABEL,
    UNIT_NAME,
    Target,
)
from proxy.install.service_plan import BREW_LABEL, Launch, Situation
from proxy.machine.machine import Machine
from proxy.settings import ProxySettings, connect_url

__all__ = [
    "brew_plist_env",
    "config_table",
    "default_urls",
    "detect_launch",
    "installed_num_parallel",
    "installed_service",
    "installer_situation",
    "lane_settings",
    "proxy_token",
]


def _read_plist(path: Path) -> dict[str, Any] | None:
    try:
        data = plistlib.loads(path.read_bytes())
    except (OSError, plistlib.InvalidFileException, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _runs_ollama_serve(agent: dict[str, Any]) -> bool:
    args = agent.get("ProgramArguments") or [agent.get("Program", "")]
    words = [str(arg) for arg in args]
    return any(Path(w).name == "ollama" for w in words) and "serve" in words


def detect_launch(machine: Machine) -> tuple[Launch, str | None]:
    """How Ollama is started here, and the LaunchAgent label when one runs `ollama serve`."""
    if machine.platform != "darwin":
        shown = machine.run(["systemctl", "show", "ollama.service", "--property=LoadState"])
        loaded = shown.rc == 0 and "LoadState=loaded" in shown.stdout
        return ("systemd", None) if loaded else ("none", None)
    if machine.run(["pgrep", "-x", "Ollama"]).rc == 0:
        return "app", None
    if machine.which("brew") is not None:
        listed = machine.run(["brew", "services", "list"])
        for line in listed.stdout.splitlines():
            cols = line.split()
            if len(cols) >= 2 and cols[0] == "ollama" and cols[1] == "started":
                return "brew", None
    agents = machine.home / "Library" / "LaunchAgents"
    for path in sorted(agents.glob("*.plist")) if agents.is_dir() else []:
        if path.stem in (PROXY_LABEL, ENV_LABEL, BREW_LABEL):
            continue
        agent = _read_plist(path)
        if agent is not None and _runs_ollama_serve(agent):
            return "agent", str(agent.get("Label", path.stem))
    return "none", None


def config_table(path: Path, table: str = "serve") -> dict[str, Any]:
    """One table of the proxy's TOML config file; empty when absent or unreadable."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    found = doc.get(table, {})
    return found if isinstance(found, dict) else {}


def _url_of(listen: str) -> str:
    try:
        return connect_url(listen)
    except ValueError:
        return connect_url(PROXY_ADDRESS)


def default_urls(machine: Machine) -> tuple[str, str]:
    """(proxy URL, Ollama URL) from the proxy's config file, else the defaults."""
    table = config_table(machine.config_path)
    listen = table.get("listen")
    upstream = table.get("upstream")
    proxy = _url_of(listen if isinstance(listen, str) else PROXY_ADDRESS)
    ollama = upstream if isinstance(upstream, str) else f"http://{OLLAMA_ADDRESS}"
    return proxy, ollama.rstrip("/")


def proxy_token(machine: Machine) -> str | None:
    """The bearer token the proxy expects, from LANES_AUTH_TOKEN or the config file."""
    token = machine.env.get("LANES_AUTH_TOKEN") or config_table(machine.config_path).get(
        "auth_token"
    )
    return token if isinstance(token, str) and token else None


def installer_situation(machine: Machine, target: Target) -> Situation:
    """What `lanes install` and `lanes uninstall` need to know before planning."""
    launch, label = detect_launch(machine)
    ours = (
        (target.proxy_plist, target.env_plist)
        if target.platform == "darwin"
        else (target.unit_path, target.dropin_path)
    )
    config_text = read_config(target.config_path)
    env_agent = _read_plist(target.env_plist) if target.platform == "darwin" else None
    installed_env = env_agent.get("EnvironmentVariables", {}) if env_agent else {}
    return Situation(
        launch=launch,
        agent_label=label,
        config_text=config_text,
        installed_env={str(k): str(v) for k, v in installed_env.items()},
        existing=frozenset(path for path in ours if path.exists()),
    )


def brew_plist_env(machine: Machine) -> dict[str, str] | None:
    """OLLAMA_* variables in brew's ollama plist; None when there is no such plist."""
    if machine.platform != "darwin":
        return None
    agent = _read_plist(machine.home / "Library" / "LaunchAgents" / f"{BREW_LABEL}.plist")
    if agent is None:
        return None
    env = agent.get("EnvironmentVariables") or {}
    return {str(k): str(v) for k, v in env.items() if str(k).startswith("OLLAMA_")}


def installed_service(machine: Machine, target: Target) -> InstalledService | None:
    """The proxy service `lanes install` left, if any, and whether its program still exists."""
    if machine.platform == "darwin":
        agent = _read_plist(target.proxy_plist)
        if agent is None:
            return None
        exe = str((agent.get("ProgramArguments") or ["?"])[0])
        restart = f"launchctl kickstart -k gui/{machine.uid}/{PROXY_LABEL}"
        logs = str(target.log_dir / "proxy.log")
        return InstalledService(str(target.proxy_plist), exe, Path(exe).exists(), restart, logs)
    try:
        unit = target.unit_path.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE)
    words = shlex.split(match[1]) if match else ["?"]
    restart = f"systemctl --user restart {UNIT_NAME}"
    logs = f"journalctl --user -u {UNIT_NAME}"
    exists = Path(words[0]).exists()
    return InstalledService(str(target.unit_path), words[0], exists, restart, logs)


def _proxy_settings(machine: Machine) -> ProxySettings:
    """The proxy's settings: its config file (when there is one) and the LANES_ environment."""
    if machine.config_path.is_file():
        return load_settings(ProxySettings, {}, config_file=machine.config_path)
    return ProxySettings()


def lane_settings(machine: Machine, ollama_url: str) -> LaneSettings:
    """The proxy's lane settings for the upstream at `ollama_url`: its [[serve.upstreams]]
    entry (that URL's, else the first), else [serve]; the defaults when they do not load."""
    try:
        settings = _proxy_settings(machine)
    except SettingsError as exc:
        return LaneSettings(error=str(exc))
    specs = settings.upstream_specs()
    spec = next((s for s in specs if s.url == ollama_url.rstrip("/")), specs[0])
    table = f'the [[serve.upstreams]] entry "{spec.name}"' if settings.upstreams else "[serve]"
    return LaneSettings(
        upstream=spec.name,
        table=table,
        cap=None if spec.lanes == "auto" else spec.lanes,
        model_lanes=dict(spec.model_lanes),
        num_parallel=spec.num_parallel,
    )


_DROPIN_PARALLEL = re.compile(r'^Environment="?OLLAMA_NUM_PARALLEL=(\d+)"?\s*$', re.MULTILINE)


def installed_num_parallel(machine: Machine, target: Target) -> int | None:
    """The OLLAMA_NUM_PARALLEL an earlier `lanes install` set; None when there is none.

    macOS: the env agent's EnvironmentVariables; Linux: the ollama.service drop-in. A config
    file from before the lane map, with a number in `[serve] lanes`, counts too.
    """
    if machine.platform == "darwin":
        agent = _read_plist(target.env_plist) or {}
        value = str((agent.get("EnvironmentVariables") or {}).get("OLLAMA_NUM_PARALLEL", ""))
        found = value if value.isdigit() else None
    else:
        try:
            match = _DROPIN_PARALLEL.search(target.dropin_path.read_text(encoding="utf-8"))
        except OSError:
            match = None
        found = match[1] if match else None
    if found is not None:
        return int(found)
    previous = config_table(machine.config_path).get("lanes")
    return previous if isinstance(previous, int) and not isinstance(previous, bool) else None
