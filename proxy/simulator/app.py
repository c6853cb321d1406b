"""The simulated Ollama as an aiohttp application: routes, Host check, error bodies, /_sim/*."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from proxy.settings import is_loopback_host, split_listen
from proxy.simulator import api, wire
from proxy.simulator.engine import Engine
from proxy.simulator.inference import json_response
from proxy.simulator.jobs import ApiError, decode_body
from proxy.simulator.settings import ModelSpec, SimulatorSettings

__all__ = ["ENGINE", "create_app", "host_allowed"]

ENGINE = api.ENGINE
_MODIFIED_NS = 1_785_000_000 * 1_000_000_000  # a fixed "pulled at" time in 2026
_FOREVER_S = 292 * 365 * 86400.0


def host_allowed(host_header: str) -> bool:
    """Ollama's allowedHostsMiddleware: local names and loopback/private/unspecified IPs."""
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        host = host.rpartition(":")[0]
    if not host or host in ("localhost", socket.gethostname().lower()):
        return True
    if host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified


def _middlewares(check_host: bool) -> list[Any]:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if check_host and not host_allowed(request.headers.get("Host", "")):
            return web.Response(status=403)
        try:
            return await handler(request)
        except ApiError as exc:
            if request.path.startswith("/v1/"):
                return json_response(wire.openai_error(exc.message, exc.status), exc.status)
            return json_response(wire.error_body(exc.message), exc.status)
        except web.HTTPMethodNotAllowed:
            return web.Response(
                status=405, body=b"405 method not allowed", content_type="text/plain"
            )
        except web.HTTPNotFound:
            return web.Response(status=404, body=b"404 page not found", content_type="text/plain")

    return [guard]


def _digest(spec: ModelSpec) -> str:
    return hashlib.sha256(spec.name.encode()).hexdigest()


def _details(spec: ModelSpec) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": [spec.family],
        "parameter_size": spec.parameter_size,
        "quantization_level": spec.quantization_level,
    }


def _capabilities(spec: ModelSpec) -> list[str]:
    return ["embedding"] if spec.embedding_only else ["completion", "tools"]


async def root(request: web.Request) -> web.Response:
    return web.Response(body=b"Ollama is running", content_type="text/plain")


async def version(request: web.Request) -> web.Response:
    return json_response({"version": request.app[ENGINE].settings.version})


async def status(request: web.Request) -> web.Response:
    return json_response({"cloud": {"disabled": False, "source": "none"}})


async def tags(request: web.Request) -> web.Response:
    models = [
        {
            "name": spec.name,
            "model": spec.name,
            "modified_at": wire.rfc3339(_MODIFIED_NS),
            "size": spec.size,
            "digest": _digest(spec),
            "details": _details(spec),
            "capabilities": _capabilities(spec),
        }
        for spec in request.app[ENGINE].settings.models
    ]
    return json_response({"models": models})


async def ps(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.pump()
    offset = time.time() - engine.now()
    rows = []
    for runner in engine.sim.runners.values():
        expires = runner.expires_at + offset
        if runner.keep_alive_s < 0:
            expires = time.time() + _FOREVER_S
        spec = runner.spec
        row = {
            "name": spec.name,
            "model": spec.name,
            "size": spec.size,
            "digest": _digest(spec),
            "details": _details(spec),
            "expires_at": wire.rfc3339(int(expires * 1e9)),
            "size_vram": spec.size,
            "context_length": runner.options.num_ctx,
        }
        rows.append((expires, row))
    rows.sort(key=lambda pair: -pair[0])
    return json_response({"models": [row for _, row in rows]})


async def show(request: web.Request) -> web.Response:
    body = decode_body(await request.read(), "api.ShowRequest")
    name = body.get("model") or body.get("name") or ""
    spec = request.app[ENGINE].sim.resolve(str(name))
    if spec is None:
        raise ApiError(404, wire.not_found_model(str(name)))
    arch = spec.family
    return json_response(
        {
            "license": "Simulated model; no weights, no license.",
            "modelfile": f"# Modelfile generated by lanes simulate\nFROM {spec.name}\n",
            "parameters": 'stop                           "<|im_end|>"',
            "template": "{{ .System }}\n{{ .Prompt }}",
            "details": _details(spec),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": int(spec.size * 1.7),
                f"{arch}.context_length": spec.context_length,
                f"{arch}.embedding_length": spec.embedding_length,
            },
            "capabilities": _capabilities(spec),
            "modified_at": wire.rfc3339(_MODIFIED_NS),
        }
    )


async def pull(request: web.Request) -> web.StreamResponse:
    body = decode_body(await request.read(), "api.PullRequest")
    name = str(body.get("model") or body.get("name") or "")
    spec = request.app[ENGINE].sim.resolve(name)
    missing = "pull model manifest: file does not exist"
    if not body.get("stream", True):
        if spec is None:
            raise ApiError(500, missing)
        return json_response({"status": "success"})
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    await response.write(wire.ndjson({"status": "pulling manifest"}))
    if spec is None:
        await response.write(wire.ndjson(wire.error_body(missing)))
        return response
    digest = "sha256:" + _digest(spec)
    for done in (0, spec.size // 2, spec.size):
        line = {"status": f"pulling {digest[7:19]}", "digest": digest, "total": spec.size}
        await response.write(wire.ndjson(line | ({"completed": done} if done else {})))
    for status_line in ("verifying sha256 digest", "writing manifest", "success"):
        await response.write(wire.ndjson({"status": status_line}))
    return response


def _v1_model(spec: ModelSpec) -> dict[str, Any]:
    created = _MODIFIED_NS // 1_000_000_000
    return {"id": spec.name, "object": "model", "created": created, "owned_by": "library"}


async def v1_models(request: web.Request) -> web.Response:
    data = [_v1_model(spec) for spec in request.app[ENGINE].settings.models]
    return json_response({"object": "list", "data": data})


async def v1_model(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    spec = request.app[ENGINE].sim.resolve(name)
    if spec is None:
        raise ApiError(404, wire.not_found_embed(name).split(",")[0])
    return json_response(_v1_model(spec))


async def sim_stats(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.pump()
    return json_response(engine.stats())


async def sim_reset(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    engine.sim.reset_counters()
    return json_response(engine.stats())


async def sim_events(request: web.Request) -> web.Response:
    return json_response({"events": list(request.app[ENGINE].sim.events)})


def create_app(settings: SimulatorSettings) -> web.Application:
    """The simulator app; serve it with handler_cancellation=True so disconnects cancel."""
    host, _ = split_listen(settings.listen)
    # Ollama sets no request-size limit (images travel as base64); 1 GiB keeps a bound.
    app = web.Application(middlewares=_middlewares(is_loopback_host(host)), client_max_size=2**30)
    engine = Engine(settings)
    app[ENGINE] = engine

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        yield
        engine.close()

    app.cleanup_ctx.append(lifetime)
    routes = [
        web.get("/", root),
        web.get("/api/version", version),
        web.get("/api/status", status),
        web.get("/api/tags", tags),
        web.get("/api/ps", ps),
        web.post("/api/show", show),
        web.post("/api/pull", pull),
        web.post("/api/generate", api.generate),
        web.post("/api/chat", api.chat),
        web.post("/api/embed", api.embed),
        web.post("/api/embeddings", api.embeddings),
        web.get("/v1/models", v1_models),
        web.get("/v1/models/{model:.+}", v1_model),
        web.post("/v1/chat/completions", api.v1_chat),
        web.post("/v1/completions", api.v1_completions),
        web.post("/v1/embeddings", api.v1_embeddings),
        web.get("/_sim/stats", sim_stats),
        web.post("/_sim/reset", sim_reset),
        web.get("/_sim/events", sim_events),
    ]
    app.add_routes(routes)
    return app
