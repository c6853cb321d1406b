"""What the doctor looks at: records of Ollama, the proxy and the machine, gathered at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.machine.listeners import Listener
from proxy.ollama import LoadedModel

__all__ = ["DoctorFacts", "InstalledService", "OllamaProbe", "ProxyProbe"]


@dataclass(frozen=True)
class OllamaProbe:
    """What Ollama's address answered."""

    url: str
    version: str | None = None  # None: did not answer like Ollama
    error: str | None = None
    is_proxy: bool = False  # it answered /stats: this is the lanes proxy, not Ollama
    models: tuple[LoadedModel, ...] = ()


@dataclass(frozen=True)
class ProxyProbe:
    """What the proxy's /stats answered."""

    url: str
    lanes: int | None = None  # None: did not answer
    version: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class InstalledService:
    """The proxy service that `lanes install` left, as read from its file."""

    path: str
    exe: str
    exe_exists: bool
    restart: str  # the command that restarts it
    logs: str  # where its logs are


@dataclass(frozen=True)
class DoctorFacts:
    """Everything the doctor looked at; gathered at the edge, judged by `diagnose`."""

    platform: str
    lanes_version: str
    ollama: OllamaProbe
    proxy: ProxyProbe
    ollama_env: Mapping[str, str] | None  # OLLAMA_* in effect; None when unreadable
    env_source: str = ""  # where ollama_env was read
    listeners: tuple[Listener, ...] | None = None  # None when they cannot be listed
    brew_plist_env: Mapping[str, str] | None = None  # None when there is no brew plist
    service: InstalledService | None = None
    # /api/show model_info of the loaded models, by name; a model that could not be read is absent
    model_info: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
