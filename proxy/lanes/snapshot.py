"""The queue's snapshot (rule 15): counters, and per host its lanes, its models and its work."""

from __future__ import annotations

from dataclasses import dataclass, field

from proxy.lanes.backlog import Backlog
from proxy.lanes.lanemap import Parallel
from proxy.lanes.placement import Host

__all__ = ["HostSnapshot", "ModelSnapshot", "QueueSnapshot", "host_snapshot"]

_NOT_READ = Parallel.unknown("not read yet")


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """One model's lanes on one host: what the proxy admits, what Ollama runs, what is held."""

    name: str
    lanes: int  # the most requests the proxy sends this model at once
    source: str  # why: ollama-env, rule:embedding, rule:architecture <arch>, config, assumed
    busy: int
    ollama_lanes: int  # what Ollama runs it with, by the lane map
    ollama_source: str


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """One host's lanes and the queued work it could take (rule 15)."""

    name: str
    lanes: int
    busy: int
    healthy: bool
    eligible: int  # queued tickets this host may serve (rule 10)
    runnable: int  # of those, how many it could start now (free lanes, model limits)
    models: tuple[ModelSnapshot, ...] = ()
    cap: int | None = None  # lanes set by hand; None: auto
    parallel: Parallel = _NOT_READ  # its NUM_PARALLEL, as read


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """The queue's counters at one moment; times are the `now` values callers passed."""

    lanes: int
    busy: int
    depth: int
    by_class: dict[str, int]  # queued tickets by the class they asked for
    by_client: dict[str, int]
    oldest_enqueued_at: float | None
    hosts: tuple[HostSnapshot, ...]
    counters: dict[str, float] = field(default_factory=dict)  # client -> service (rule 4)


def host_snapshot(host: Host, backlog: Backlog, held: set[str]) -> HostSnapshot:
    """One host's lanes, its eligible and runnable work (rule 10), and its model rows.

    `held`: the queued models some healthy host has installed.
    """
    eligible = runnable = 0
    if host.healthy:
        for model in backlog.models():
            if host.has(model) or model not in held:
                count = backlog.live(model) - backlog.avoiding(model, host.name)
                eligible += count
                runnable += min(count, host.room_for(model))
    if host.cap is not None:
        runnable = min(runnable, host.cap - host.busy)
    return HostSnapshot(
        host.name,
        host.capacity(),
        host.busy,
        host.healthy,
        eligible,
        runnable,
        models=model_rows(host, backlog),
        cap=host.cap,
        parallel=host.parallel,
    )


def model_rows(host: Host, backlog: Backlog) -> tuple[ModelSnapshot, ...]:
    """The lane map as it matters now: models running, loaded, waiting or set by hand."""
    names = set(host.running) | set(host.loaded) | set(host.overrides)
    names |= {m for m in backlog.models() if host.has(m)}
    rows = []
    for model in sorted(names):
        mine, ollama = host.lanes_of(model), host.ollama_lanes(model)
        rows.append(
            ModelSnapshot(
                model,
                mine.lanes,
                mine.source,
                host.running.get(model, 0),
                ollama.lanes,
                ollama.source,
            )
        )
    return tuple(rows)
