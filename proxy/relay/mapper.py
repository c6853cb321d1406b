"""LaneMapper: keeps each host's lane map true to the running Ollama, off the request path.

- NUM_PARALLEL: for a local host, read from the running Ollama's environment (its process,
  `launchctl getenv`, the systemd unit) on every poll, in a thread; a host's `num_parallel`
  setting (a remote host) is used as it is. A new pid or start time, or a new value, updates
  the map at once; queued and running requests stay where they are.
- Model facts: `/api/show` (capabilities, architecture) once per model digest, for every
  installed model, again when `/api/tags` shows a new digest; and at once for a model a
  request names before its facts are known (it runs one at a time until then).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from proxy.lanes.lanemap import Parallel
from proxy.lanes.queue import LaneQueue
from proxy.machine.machine import Machine
from proxy.machine.ollama_process import OllamaProcess, read_ollama_process
from proxy.ollama_state import OllamaError, OllamaReader, OllamaState
from proxy.relay.gate import LaneGate
from proxy.upstream_specs import UpstreamSpec

__all__ = ["LaneMapper", "ProcessSeen"]

log = structlog.get_logger("proxy.lanes")

ProcessReader = Callable[[str, str | None], OllamaProcess]


@dataclass(frozen=True, slots=True)
class ProcessSeen:
    """What the mapper last read of a host's Ollama process."""

    pids: tuple[int, ...]
    started_at: float | None
    parallel: Parallel


def _configured(spec: UpstreamSpec) -> Parallel | None:
    if spec.num_parallel is None:
        return None
    detail = f"num_parallel = {spec.num_parallel} in the proxy's settings for {spec.name}"
    return Parallel(spec.num_parallel, "config", detail)


class LaneMapper:
    """Feeds the queue's hosts their NUM_PARALLEL and their models' facts."""

    def __init__(
        self,
        queue: LaneQueue,
        gate: LaneGate,
        specs: Iterable[UpstreamSpec],
        *,
        read_process: ProcessReader | None = None,
    ) -> None:
        self._queue = queue
        self._gate = gate
        self._specs = {spec.name: spec for spec in specs}
        self._read = read_process or self._read_this_machine
        self.readers: dict[str, OllamaReader] = {}
        self.seen: dict[str, ProcessSeen] = {}
        self._digests: dict[str, dict[str, str]] = {name: {} for name in self._specs}
        self._looking: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        for name, spec in self._specs.items():
            configured = _configured(spec)
            if configured is not None:
                queue.observe_parallel(name, configured)

    @staticmethod
    def _read_this_machine(url: str, version: str | None) -> OllamaProcess:
        return read_ollama_process(Machine.current(), url, version)

    def open(self, readers: dict[str, OllamaReader]) -> None:
        """Use the hosts' readers (made on the app's session)."""
        self.readers = readers

    async def host_seen(self, name: str, state: OllamaState) -> None:
        """After a poll of `name`: re-read its NUM_PARALLEL, look up new or changed models."""
        if not state.reachable:
            return
        spec = self._specs[name]
        if spec.num_parallel is None:
            found = await asyncio.to_thread(self._read, spec.url, state.version)
            self._apply_process(name, found)
        if state.installed is not None:
            known = self._digests[name]
            for model in state.installed:
                if known.get(model.name) != model.digest:
                    self._look_up(name, model.name, model.digest)

    def ensure(self, model: str) -> None:
        """A request names `model`: look it up now on every host that has not yet."""
        for name in self._specs:
            if model not in self._digests[name]:
                self._look_up(name, model, "")

    def configure(self, specs: Iterable[UpstreamSpec]) -> list[str]:
        """New settings (SIGHUP): lanes and model_lanes per host, num_parallel; the names of
        hosts that need a restart to change (added or removed ones)."""
        fresh = {spec.name: spec for spec in specs}
        for name, spec in fresh.items():
            if name not in self._specs:
                continue
            cap = None if spec.lanes == "auto" else spec.lanes
            self._queue.configure_host(name, cap=cap, overrides=spec.model_lanes)
            self._specs[name] = spec
            configured = _configured(spec)
            if configured is not None:
                self._queue.observe_parallel(name, configured)
            else:
                self.seen.pop(name, None)  # read the process again at the next poll
        self._gate.poke()
        return sorted(set(fresh) ^ set(self._specs))

    async def close(self) -> None:
        """Cancel the lookups still running."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _apply_process(self, name: str, found: OllamaProcess) -> None:
        before = self.seen.get(name)
        now = ProcessSeen(found.pids, found.started_at, found.num_parallel)
        self.seen[name] = now
        if before == now:
            return
        if before is not None and (before.pids, before.started_at) != (now.pids, now.started_at):
            log.info("ollama_restarted", upstream=name, pids=list(now.pids))
        if before is None or before.parallel != now.parallel:
            log.info(
                "lane_map_read",
                upstream=name,
                num_parallel=now.parallel.value,
                source=now.parallel.source,
                detail=now.parallel.detail,
            )
        self._queue.observe_parallel(name, now.parallel)
        self._gate.poke()

    def _look_up(self, name: str, model: str, digest: str) -> None:
        if (name, model) in self._looking or name not in self.readers:
            return
        self._looking.add((name, model))
        task = asyncio.create_task(self._show(name, model, digest))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _show(self, name: str, model: str, digest: str) -> None:
        try:
            facts = await self.readers[name].show(model)
        except OllamaError:
            self._digests[name].setdefault(model, "")  # asked; the next digest asks again
            return
        finally:
            self._looking.discard((name, model))
        self._digests[name][model] = digest
        self._queue.observe_model(
            name, model, capabilities=facts.capabilities, architecture=facts.architecture
        )
        self._gate.poke()
