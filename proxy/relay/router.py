"""Router: the I/O around host placement: relays, health checks, model polls, merged views, pins."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog

from proxy import errors
from proxy.lanes.placement import Host
from proxy.lanes.queue import LaneQueue
from proxy.relay.gate import LaneGate
from proxy.relay.health import Breaker
from proxy.relay.merge import merge
from proxy.relay.pinning import pin_body
from proxy.relay.upstream import Upstream
from proxy.settings import ProxySettings
from proxy.stats.schema import PinView, UpstreamsRow
from proxy.upstream_specs import UpstreamSpec, resolve_lanes

__all__ = ["Router", "build_hosts"]

log = structlog.get_logger("proxy.relay.router")
_TICK_S = 0.25  # how often breaker timeouts are applied
_CHECK_TIMEOUT_S = 5.0


def build_hosts(specs: list[UpstreamSpec]) -> list[Host]:
    """One `Host` per spec, lane numbers running on from one host to the next."""
    hosts, first = [], 0
    for spec in specs:
        lanes = resolve_lanes(spec)
        hosts.append(
            Host(
                spec.name,
                lanes,
                first_lane=first,
                weight=spec.weight,
                max_loaded=spec.max_loaded_models,
                model_lanes=spec.model_lanes,
            )
        )
        first += lanes
    return hosts


def _auth(spec: UpstreamSpec) -> str | None:
    return None if spec.auth_header is None else spec.auth_header.get_secret_value()


class Router:
    """Knows every host: its relay, its breaker, what it has loaded and installed."""

    def __init__(
        self,
        settings: ProxySettings,
        queue: LaneQueue,
        gate: LaneGate,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.specs = {spec.name: spec for spec in settings.upstream_specs()}
        self.names = list(self.specs)
        self._settings = settings
        self._queue = queue
        self._gate = gate
        self._clock = clock
        self._breakers = {
            name: Breaker(failures=settings.breaker_failures, open_s=settings.breaker_open_s)
            for name in self.names
        }
        self.relays: dict[str, Upstream] = {}
        self._session: aiohttp.ClientSession | None = None
        self.pins = dict(settings.pin)
        self.pinned: Counter[str] = Counter()

    def open(self, session: aiohttp.ClientSession) -> None:
        """Create the hosts' relays on the app's shared session."""
        self._session = session
        self.relays = {
            name: Upstream(self._settings, session, base=spec.url, auth=_auth(spec))
            for name, spec in self.specs.items()
        }

    def healthy(self) -> list[str]:
        """Names of the hosts that take new requests, in configuration order (fail-open)."""
        return [name for name in self.names if self._queue.host(name).healthy]

    def request_failed(self, name: str) -> None:
        """A connection failure or 5xx from `name` (passive check)."""
        self._breakers[name].request_failed(self._clock())
        self._apply()

    def request_succeeded(self, name: str) -> None:
        """An answer below 500 from `name`."""
        self._breakers[name].request_succeeded()

    def can_retry(self, model: str, failed: str) -> bool:
        """True if another healthy host has `model` installed (or may have: not polled yet)."""
        return any(h.healthy and h.name != failed and h.has(model) for h in self._queue.hosts)

    def pick(self, model: str = "") -> str:
        """A host for a request that takes no lane: warm, else installed, else first healthy."""
        up = [self._queue.host(name) for name in self.healthy()]
        if model:
            for host in up:
                if host.warm(model):
                    return host.name
            for host in up:
                if host.installed is not None and model in host.installed:
                    return host.name
        return up[0].name if up else self.names[0]

    def pin(self, path: str, model: str, body: bytes) -> bytes:
        """The body with `[serve.pin]` values for `model` applied; counts each changed request."""
        spec = self.pins.get(model)
        if spec is None:
            return body
        pinned = pin_body(path, body, spec)
        if pinned is None:
            return body
        self.pinned[model] += 1
        return pinned

    async def merged(self, path: str) -> dict[str, Any]:
        """The union of `path` over the healthy hosts; 502 if none answers."""
        names = self.healthy()
        docs = [d for d in await asyncio.gather(*(self._get(n, path) for n in names)) if d]
        if not docs:
            raise errors.UpstreamUnavailable(f"no upstream answered {path} ({', '.join(names)})")
        return merge(path, docs)

    async def watch(self) -> None:
        """Check every host each `health_interval_s`; apply breaker timeouts; never returns."""
        next_check = 0.0
        while True:
            now = self._clock()
            if now >= next_check:
                next_check = now + self._settings.health_interval_s
                await asyncio.gather(*(self._check(name) for name in self.names))
            self._apply()
            await asyncio.sleep(_TICK_S)

    def rows(self) -> dict[str, UpstreamsRow]:
        """The `/stats` rows of every host."""
        rows, now = {}, self._clock()
        for name, spec in self.specs.items():
            host = self._queue.host(name)
            rows[name] = UpstreamsRow(
                url=spec.url,
                lanes=host.lanes,
                busy=host.busy,
                healthy=self._breakers[name].healthy(now),
                loaded_models=list(host.loaded),
                requests=host.dispatched,
                swaps=host.swaps,
                errors=self._breakers[name].errors,
            )
        return rows

    def pin_rows(self) -> dict[str, PinView]:
        """The `/stats` rows of every pinned model."""
        return {
            model: PinView(
                num_ctx=spec.num_ctx,
                keep_alive=None if spec.keep_alive is None else str(spec.keep_alive),
                pinned=self.pinned[model],
            )
            for model, spec in self.pins.items()
        }

    def _apply(self) -> None:
        """Push breaker health into the queue; if every host is out, all stay in (fail open:
        requests then fail fast with the host's own error instead of waiting for a lane)."""
        now = self._clock()
        states = {name: breaker.healthy(now) for name, breaker in self._breakers.items()}
        fail_open = not any(states.values())
        changed = False
        for name, healthy in states.items():
            host = self._queue.host(name)
            if host.healthy != (healthy or fail_open):
                log.warning("upstream_health", upstream=name, healthy=healthy)
                self._queue.set_health(name, healthy or fail_open)
                changed = True
        if changed:
            self._gate.poke()

    async def _check(self, name: str) -> None:
        version = await self._get(name, "/api/version")
        self._breakers[name].check(version is not None, self._clock())
        if version is None:
            return
        ps, tags = await asyncio.gather(self._get(name, "/api/ps"), self._get(name, "/api/tags"))
        self._queue.observe_host(
            name,
            loaded=None if ps is None else _names(ps),
            installed=None if tags is None else _names(tags),
        )
        self._apply()
        self._gate.poke()

    async def _get(self, name: str, path: str) -> Any:
        """GET a JSON document from one host; None on any failure."""
        session = self._session
        if session is None:
            return None
        spec = self.specs[name]
        auth = _auth(spec)
        headers = {"Authorization": auth} if auth else {}
        try:
            async with session.get(
                spec.url + path,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=_CHECK_TIMEOUT_S),
            ) as resp:
                if resp.status != 200:
                    return None
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None


def _names(doc: Any) -> list[str]:
    models = doc.get("models") if isinstance(doc, dict) else None
    return [
        m["name"]
        for m in (models if isinstance(models, list) else [])
        if isinstance(m, dict) and isinstance(m.get("name"), str)
    ]
