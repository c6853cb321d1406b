"""What the doctor looks at: records of Ollama, the proxy and the machine, gathered at the edge."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from proxy.lanes.lanemap import Parallel
from proxy.machine.listeners import Listener
from proxy.machine.speedups import Speedup
from proxy.ollama import LoadedModel, ModelFacts

__all__ = [
    "DoctorFacts",
    "InstalledService",
    "LaneSettings",
    "OllamaProbe",
    "ProxyHost",
    "ProxyProbe",
]


@dataclass(frozen=True)
class OllamaProbe:
    """What Ollama's address answered."""

    url: str
    version: str | None = None  # None: did not answer like Ollama
    error: str | None = None
    is_proxy: bool = False  # it answered /stats: this is the lanes proxy, not Ollama
    models: tuple[LoadedModel, ...] = ()


@dataclass(frozen=True)
class ProxyHost:
    """One upstream as a running proxy's /stats shows it: its cap and its NUM_PARALLEL."""

    name: str
    url: str
    cap: int | None  # a hand-set `lanes`; None: "auto"
    num_parallel: int | None
    num_parallel_source: str
    num_parallel_detail: str = ""


@dataclass(frozen=True)
class ProxyProbe:
    """What the proxy's /stats answered."""

    url: str
    lanes: int | None = None  # None: did not answer
    version: str | None = None
    error: str | None = None
    hosts: tuple[ProxyHost, ...] = ()

    def host_for(self, ollama_url: str) -> ProxyHost | None:
        """The upstream whose URL is `ollama_url`, else the only one; None when neither."""
        wanted = ollama_url.rstrip("/")
        same = [host for host in self.hosts if host.url.rstrip("/") == wanted]
        if same:
            return same[0]
        return self.hosts[0] if len(self.hosts) == 1 else None


@dataclass(frozen=True)
class LaneSettings:
    """The proxy's lane settings for Ollama's upstream, as its config file and env give them."""

    upstream: str = "default"  # the upstream's name
    table: str = "[serve]"  # where its settings live: "[serve]" or its [[serve.upstreams]] entry
    cap: int | None = None  # `lanes` set by hand; None: "auto"
    model_lanes: Mapping[str, int] = field(default_factory=dict)
    num_parallel: int | None = None
    error: str | None = None  # the settings did not load (then the rest are the defaults)


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
    parallel: Parallel = field(default_factory=lambda: Parallel.unknown("not read"))
    listeners: tuple[Listener, ...] | None = None  # None when they cannot be listed
    brew_plist_env: Mapping[str, str] | None = None  # None when there is no brew plist
    service: InstalledService | None = None
    settings: LaneSettings = field(default_factory=LaneSettings)
    # the models Ollama has installed (/api/tags) or loaded, and those set in model_lanes
    model_names: tuple[str, ...] = ()
    # /api/show of those models, by name; a model that could not be read is absent
    model_facts: Mapping[str, ModelFacts] = field(default_factory=dict)
    speedups: tuple[Speedup, ...] = ()  # the compiled extensions this interpreter loaded
