"""Inference handlers: /api/generate, /api/chat, /api/embed(dings) and their /v1 twins."""

from __future__ import annotations

import base64
import struct
from typing import Any

from aiohttp import web

from proxy.simulator import wire
from proxy.simulator.catalog import ModelSpec
from proxy.simulator.content import count_tokens, embedding
from proxy.simulator.engine import Engine
from proxy.simulator.inference import (
    MIN_LOAD_NS,
    NativeOutput,
    OpenAIOutput,
    client_gone,
    json_response,
    run_job,
)
from proxy.simulator.jobs import ApiError, Job, chat_job, decode_body, generate_job
from proxy.simulator.jobs import parse_keep_alive as keep_alive_of
from proxy.simulator.model import LoadOptions, MaxQueueExceeded, Ticket

__all__ = ["ENGINE", "chat", "embed", "embeddings", "generate", "v1_chat", "v1_completions"]

ENGINE = web.AppKey("engine", Engine)
_NS = 1_000_000_000


async def _body(request: web.Request, go_type: str) -> dict[str, Any]:
    return decode_body(await request.read(), go_type)


async def _load_or_unload(request: web.Request, engine: Engine, job: Job) -> web.Response:
    stamp = wire.rfc3339_now()
    chat = job.kind == "chat"
    if job.keep_alive_s == 0:
        engine.sim.unload(job.spec.name, engine.now())
        engine.pump()
        return json_response(wire.load_reply(job.model, stamp, "unload", chat=chat))
    await _acquire(request, engine, job.spec, job.options, job.keep_alive_s, needs_slot=False)
    return json_response(wire.load_reply(job.model, wire.rfc3339_now(), "load", chat=chat))


async def _acquire(
    request: web.Request,
    engine: Engine,
    spec: ModelSpec,
    options: LoadOptions,
    keep_alive_s: float | None,
    *,
    needs_slot: bool,
) -> Ticket:
    """Wait for a slot (or only for the model, without needs_slot); 503 when the queue is full."""
    try:
        return await engine.acquire(
            spec,
            options,
            keep_alive_s=keep_alive_s,
            needs_slot=needs_slot,
            tag=request.headers.get("X-Sim-Tag", ""),
            gone=lambda: client_gone(request),
        )
    except MaxQueueExceeded:
        raise ApiError(503, wire.BUSY_MESSAGE) from None


async def generate(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    started = engine.now()
    job = generate_job(await _body(request, "api.GenerateRequest"), engine.sim)
    if job.empty:
        return await _load_or_unload(request, engine, job)
    return await run_job(request, engine, job, NativeOutput(job, engine.settings.seed), started)


async def chat(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    started = engine.now()
    job = chat_job(await _body(request, "api.ChatRequest"), engine.sim)
    if job.empty:
        return await _load_or_unload(request, engine, job)
    return await run_job(request, engine, job, NativeOutput(job, engine.settings.seed), started)


def _openai_native(body: dict[str, Any]) -> dict[str, Any]:
    """Translate an OpenAI body to the native one (ollama-api.md §3.4)."""
    options: dict[str, Any] = {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and limit > 0:
        options["num_predict"] = limit
    for key in ("temperature", "top_p", "seed", "stop"):
        if body.get(key) is not None:
            options[key] = body[key]
    native: dict[str, Any] = {
        "model": body.get("model"),
        "stream": bool(body.get("stream", False)),
        "options": options,
    }
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            native["format"] = "json"
        elif fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            native["format"] = schema or "json"
    return native


def _include_usage(body: dict[str, Any]) -> bool:
    stream_options = body.get("stream_options")
    return isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))


async def v1_chat(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    started = engine.now()
    body = await _body(request, "openai.ChatCompletionRequest")
    messages = body.get("messages")
    if not messages:
        raise ApiError(400, "[] is too short - 'messages'")
    native = _openai_native(body) | {"messages": messages}
    job = chat_job(native, engine.sim, stream_default=False)
    out = OpenAIOutput(job, _include_usage(body))
    return await run_job(request, engine, job, out, started)


async def v1_completions(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    started = engine.now()
    body = await _body(request, "openai.CompletionRequest")
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        prompt = prompt[0] if prompt and isinstance(prompt[0], str) else ""
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(400, "prompt is required")
    native = _openai_native(body) | {"prompt": prompt, "suffix": body.get("suffix")}
    job = generate_job(native, engine.sim, stream_default=False)
    out = OpenAIOutput(job, _include_usage(body))
    return await run_job(request, engine, job, out, started)


def _inputs(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ApiError(400, "invalid input type")


async def _embed_vectors(
    request: web.Request, body: dict[str, Any], inputs: list[str]
) -> tuple[str, list[list[float]], dict[str, int]]:
    """Run an embedding job; returns (model as asked, vectors, native stats)."""
    engine = request.app[ENGINE]
    started = engine.now()
    name = body.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "model is required")
    spec = engine.sim.resolve(name)
    if spec is None:
        raise ApiError(404, wire.not_found_embed(name))
    keep_alive = keep_alive_of(body.get("keep_alive"))
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    load = engine.options(spec, options or {})
    if not inputs:
        await _acquire(request, engine, spec, load, keep_alive, needs_slot=False)
        return name, [], {}
    truncate = body.get("truncate", True) is not False
    counts = [count_tokens(text) for text in inputs]
    if not truncate and any(c > load.num_ctx for c in counts):
        raise ApiError(400, "input length exceeds maximum context length")
    tokens = sum(min(c, load.num_ctx) for c in counts)
    ticket = await _acquire(request, engine, spec, load, keep_alive, needs_slot=True)
    try:
        seconds = await engine.prefill(ticket, tokens)
    except BaseException:
        engine.cancel(ticket)
        raise
    engine.finish(ticket)
    dims = body.get("dimensions")
    size = dims if isinstance(dims, int) and 0 < dims <= spec.embedding_length else None
    seed = engine.settings.seed
    vectors = [embedding(seed, text, size or spec.embedding_length) for text in inputs]
    assigned = ticket.assigned_at if ticket.assigned_at is not None else started
    stats = {
        "total_duration": max(int((engine.now() - started) * _NS), int(seconds * _NS)),
        "load_duration": max(int((assigned - started) * _NS), MIN_LOAD_NS),
        "prompt_eval_count": tokens,
    }
    return name, vectors, stats


async def embed(request: web.Request) -> web.Response:
    body = await _body(request, "api.EmbedRequest")
    inputs = _inputs(body.get("input"))
    name, vectors, stats = await _embed_vectors(request, body, inputs)
    return json_response({"model": name, "embeddings": vectors} | stats)


async def embeddings(request: web.Request) -> web.Response:
    body = await _body(request, "api.EmbeddingRequest")
    prompt = body.get("prompt") or ""
    if not isinstance(prompt, str):
        raise ApiError(400, "invalid input type")
    _, vectors, _ = await _embed_vectors(request, body, [prompt] if prompt else [])
    return json_response({"embedding": vectors[0] if vectors else []})


async def v1_embeddings(request: web.Request) -> web.Response:
    body = await _body(request, "openai.EmbedRequest")
    inputs = _inputs(body.get("input"))
    if not inputs:
        raise ApiError(400, "invalid input")
    name, vectors, stats = await _embed_vectors(request, body, inputs)
    as_base64 = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "embedding": _b64(v) if as_base64 else v, "index": i}
        for i, v in enumerate(vectors)
    ]
    tokens = stats.get("prompt_eval_count", 0)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return json_response({"object": "list", "data": data, "model": name, "usage": usage})


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
