"""Router: picks the host, relays, retries once before the first byte, owns breaker feedback."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from proxy import errors
from proxy.lanes.queue import LaneQueue
from proxy.ollama_state import OllamaError, OllamaReader, OllamaState, get_json
from proxy.relay import headers
from proxy.relay.body import RequestBody
from proxy.relay.classify import RequestFacts
from proxy.relay.gate import LaneGate, Lease
from proxy.relay.health import Breaker
from proxy.relay.merge import merge
from proxy.relay.outcome import Exchange, Relayed
from proxy.relay.tap import Tap
from proxy.relay.upstream import Body, Upstream
from proxy.settings import ProxySettings
from proxy.stats.records import HostCounters
from proxy.stats.schema import PinView
from proxy.upstream_specs import UpstreamSpec

__all__ = ["Router"]

log = structlog.get_logger("proxy.router")
_RETRYABLE = (errors.UpstreamUnavailable, errors.UpstreamTimeout)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _auth(spec: UpstreamSpec) -> str | None:
    return None if spec.auth_header is None else spec.auth_header.get_secret_value()


class Router:
    """Knows every host: its relay, its breaker, and (through the queue) its models."""

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
        self._drop_auth = settings.token is not None
        self._breakers = {
            name: Breaker(failures=settings.breaker_failures, open_s=settings.breaker_open_s)
            for name in self.names
        }
        self.relays: dict[str, Upstream] = {}
        self.readers: dict[str, OllamaReader] = {}
        self._session: aiohttp.ClientSession | None = None
        self.pins = dict(settings.pin)
        self.pinned: Counter[str] = Counter()

    def open(self, session: aiohttp.ClientSession) -> None:
        """Create the hosts' relays and readers on the app's shared session."""
        self._session = session
        for name, spec in self.specs.items():
            self.relays[name] = Upstream(self._settings, session, base=spec.url, auth=_auth(spec))
            self.readers[name] = OllamaReader(session, spec.url, auth=_auth(spec))

    def healthy(self) -> list[str]:
        """Names of the hosts that take new requests, in configuration order (fail-open)."""
        return [name for name in self.names if self._queue.host(name).healthy]

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

    def count_pin(self, model: str) -> None:
        """A `[serve.pin]` rule changed one request for `model`."""
        self.pinned[model] += 1

    async def relay(
        self,
        request: web.Request,
        facts: RequestFacts,
        exchange: Exchange,
        *,
        body: RequestBody | None = None,
        lease: Lease | None = None,
        tap: Tap | None = None,
        early: web.StreamResponse | None = None,
    ) -> web.StreamResponse:
        """Relay to the lease's host (or one picked); once more elsewhere if nothing was sent.

        `body` is the body read before classification; without it the request's own body
        streams through as it arrives. `early` is an answer already started while the request
        waited (SSE progress): the upstream's body continues it.
        """
        send = headers.request_headers(request.headers.items(), drop_authorization=self._drop_auth)
        streamed: Body = None
        if body is None and request.body_exists:
            streamed = request.content
            if request.content_length is not None:
                send.append(("Content-Length", str(request.content_length)))
        name = lease.upstream if lease else facts.upstream or self.pick(facts.model_key)
        started = self._clock()
        try:
            try:
                payload = streamed if body is None else body.payload()
                response, relayed = await self._relay_once(
                    name, request, payload, send, exchange, tap, early
                )
            except _RETRYABLE:  # nothing reached the client: once more, on another host
                if lease is None or body is None or not self.can_retry(facts.model_key, name):
                    raise
                await lease.move(avoid=name)
                name = lease.upstream
                response, relayed = await self._relay_once(
                    name, request, body.payload(), send, exchange, tap, early
                )
        finally:
            exchange.upstream_ms = _ms(self._clock() - started)
        exchange.relayed = relayed
        return response

    async def _relay_once(
        self,
        name: str,
        request: web.Request,
        body: Body,
        send: list[tuple[str, str]],
        exchange: Exchange,
        tap: Tap | None,
        early: web.StreamResponse | None = None,
    ) -> tuple[web.StreamResponse, Relayed]:
        """Relay to host `name` and tell its breaker how it went."""
        exchange.host = name
        try:
            response, relayed = await self.relays[name].relay(
                request,
                body,
                send,
                client=exchange.client,
                extra_headers=headers.lanes_headers(
                    client=exchange.client,
                    queue_ms=exchange.queue_ms,
                    queue_position=exchange.queue_position,
                ),
                on_headers=None if tap is None else tap.headers,
                on_chunk=None if tap is None else tap.chunk,
                on_stall=lambda: setattr(exchange, "stalled", True),
                out=early,
            )
        except _RETRYABLE:
            self._failed(name)
            raise
        if relayed.status >= 500 or (relayed.error is not None and not relayed.client_gone):
            self._failed(name)
        else:
            self._breakers[name].request_succeeded()
        return response, relayed

    async def merged(self, path: str) -> dict[str, Any]:
        """The union of `path` over the healthy hosts; 502 if none answers."""
        names = self.healthy()
        docs = [d for d in await asyncio.gather(*(self._get(n, path) for n in names)) if d]
        if not docs:
            raise errors.UpstreamUnavailable(f"no upstream answered {path} ({', '.join(names)})")
        return merge(path, docs)

    def host_seen(self, name: str, state: OllamaState) -> None:
        """The poll's latest look at one host: health, loaded and installed models."""
        self._breakers[name].check(state.reachable, self._clock())
        if state.reachable:
            self._queue.observe_host(
                name,
                loaded=None if state.loaded is None else [m.name for m in state.loaded],
                installed=None if state.installed is None else [m.name for m in state.installed],
            )
        self.apply_breakers()
        self._gate.poke()

    def apply_breakers(self) -> None:
        """Push breaker health into the queue; if every host is out, all stay in (fail open:
        requests then fail fast with the host's own error instead of waiting for a lane)."""
        now = self._clock()
        states = {name: breaker.healthy(now) for name, breaker in self._breakers.items()}
        fail_open = not any(states.values())
        changed = False
        for name, healthy in states.items():
            if self._queue.host(name).healthy != (healthy or fail_open):
                log.warning("upstream_health", upstream=name, healthy=healthy)
                self._queue.set_health(name, healthy or fail_open)
                changed = True
        if changed:
            self._gate.poke()

    def host_counters(self) -> list[HostCounters]:
        """The request path's own counters per host, for `/stats`."""
        now = self._clock()
        return [
            HostCounters(
                name=name,
                healthy=self._breakers[name].healthy(now),
                warm_models=tuple(self._queue.host(name).loaded),
                requests=self._queue.host(name).dispatched,
                swaps=self._queue.host(name).swaps,
                errors=self._breakers[name].errors,
            )
            for name in self.names
        ]

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

    def _failed(self, name: str) -> None:
        """A connection failure or 5xx from `name` (passive check)."""
        self._breakers[name].request_failed(self._clock())
        self.apply_breakers()

    async def _get(self, name: str, path: str) -> Any:
        """GET a JSON document from one host; None on any failure."""
        session = self._session
        if session is None:
            return None
        auth = _auth(self.specs[name])
        try:
            return await get_json(
                session,
                self.specs[name].url + path,
                headers={"Authorization": auth} if auth else {},
            )
        except OllamaError:
            return None
