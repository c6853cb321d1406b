"""HostTable: the hosts of the queue, and the only ways they change (queue rules 6, 7, 14)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from proxy.lanes.lanemap import Parallel
from proxy.lanes.placement import Host
from proxy.lanes.records import SchedulerError

__all__ = ["HostTable"]


class HostTable:
    """Named hosts in configuration order; `LaneQueue` builds on it."""

    def __init__(self, hosts: Sequence[Host]) -> None:
        names = [h.name for h in hosts]
        if not hosts or len(set(names)) != len(names):
            raise SchedulerError("at least one host is needed, each with its own name")
        self.hosts: tuple[Host, ...] = tuple(hosts)
        self._by_name = {h.name: h for h in hosts}

    @property
    def lanes(self) -> int:
        """Lanes over all hosts."""
        return sum(h.capacity() for h in self.hosts)

    def healthy_lanes(self) -> int:
        """Lanes over the healthy hosts (over all of them if none is healthy)."""
        return sum(h.capacity() for h in self.hosts if h.healthy) or self.lanes

    def lane_free(self) -> bool:
        """True when some host has a lane open."""
        return any(h.open() for h in self.hosts)

    def host(self, name: str) -> Host:
        """The host called `name` (read it; change it through the methods below)."""
        host = self._by_name.get(name)
        if host is None:
            raise SchedulerError(f"unknown host {name!r}")
        return host

    def set_health(self, name: str, healthy: bool) -> None:
        """Mark a host (un)healthy; an unhealthy host gets no new tickets (rule 14)."""
        self.host(name).healthy = healthy

    def observe_host(
        self,
        name: str,
        *,
        loaded: Iterable[str] | None = None,
        installed: Iterable[str] | None = None,
    ) -> None:
        """Apply what `/api/ps` and `/api/tags` said (rule 7); None leaves that part as it is."""
        host = self.host(name)
        if loaded is not None:
            host.observe_loaded(loaded)
        if installed is not None:
            host.observe_installed(installed)

    def observe_parallel(self, name: str, parallel: Parallel) -> None:
        """The host's NUM_PARALLEL as read from the running Ollama, or why not (rule 6)."""
        self.host(name).parallel = parallel

    def observe_model(
        self, name: str, model: str, *, capabilities: Iterable[str], architecture: str | None
    ) -> None:
        """What `/api/show` says of `model` on the host: the facts its lanes follow (rule 6)."""
        self.host(name).facts[model] = (tuple(capabilities), architecture)

    def configure_host(self, name: str, *, cap: int | None, overrides: Mapping[str, int]) -> None:
        """A reloaded config's lanes for a host (a cap, or None: auto) and its model_lanes."""
        if cap is not None and cap < 1:
            raise SchedulerError("a host's lanes must be at least 1")
        host = self.host(name)
        host.cap, host.overrides = cap, dict(overrides)
