"""Running one inference job over HTTP: slot, faults, prefill, paced streaming, final stats."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any, Protocol

from aiohttp import web

from proxy.simulator import wire
from proxy.simulator.content import split_tokens
from proxy.simulator.engine import Engine
from proxy.simulator.faults import RUNNER_ERROR, FaultPlan
from proxy.simulator.jobs import ApiError, Job
from proxy.simulator.model import MaxQueueExceeded, Ticket
from proxy.simulator.wire import FinalStats

__all__ = ["MIN_LOAD_NS", "NativeOutput", "OpenAIOutput", "Output", "json_response", "run_job"]

_NS = 1_000_000_000
MIN_LOAD_NS = 150_000  # a loaded model still takes a little while to be assigned


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=wire.dumps(body).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class Output(Protocol):
    """How one protocol (native NDJSON or OpenAI SSE) renders a job's reply."""

    content_type: str

    def chunks(self, pieces: list[str]) -> bytes: ...
    def final(self, reason: str, stats: FinalStats) -> bytes: ...
    def error(self, message: str) -> bytes: ...
    def malformed(self) -> bytes: ...
    def whole(self, text: str, reason: str, stats: FinalStats) -> Any: ...


class NativeOutput:
    """/api/generate and /api/chat replies."""

    content_type = "application/x-ndjson"

    def __init__(self, job: Job, seed: int) -> None:
        self.job = job
        self.seed = seed

    def chunks(self, pieces: list[str]) -> bytes:
        stamp = wire.rfc3339_now()
        build = wire.generate_chunk if self.job.kind == "generate" else wire.chat_chunk
        return b"".join(wire.ndjson(build(self.job.model, stamp, p)) for p in pieces)

    def _context(self, stats: FinalStats) -> list[int] | None:
        if self.job.kind != "generate" or self.job.raw:
            return None
        count = stats.prompt_eval_count + stats.eval_count
        return [(i * 7919 + self.seed * 104729) % 128000 + 1 for i in range(count)]

    def whole(self, text: str, reason: str, stats: FinalStats) -> Any:
        stamp = wire.rfc3339_now()
        if self.job.kind == "generate":
            context = self._context(stats)
            return wire.generate_final(
                self.job.model, stamp, reason, stats, response=text, context=context
            )
        return wire.chat_final(self.job.model, stamp, reason, stats, content=text)

    def final(self, reason: str, stats: FinalStats) -> bytes:
        return wire.ndjson(self.whole("", reason, stats))

    def error(self, message: str) -> bytes:
        return wire.ndjson(wire.error_body(message))

    def malformed(self) -> bytes:
        key = "response" if self.job.kind == "generate" else "message"
        return (
            f'{{"model":"{self.job.model}","created_at":"{wire.rfc3339_now()}","{key}":\n'.encode()
        )


class OpenAIOutput:
    """/v1/chat/completions and /v1/completions replies."""

    content_type = "text/event-stream"

    def __init__(self, job: Job, include_usage: bool) -> None:
        self.job = job
        self.include_usage = include_usage
        self.chat = job.kind == "chat"
        self.id = f"{'chatcmpl' if self.chat else 'cmpl'}-{random.randint(0, 998)}"
        self.created = int(time.time())
        self.first = True

    def chunks(self, pieces: list[str]) -> bytes:
        out = []
        for piece in pieces:
            if self.chat:
                body = wire.openai_chat_chunk(
                    self.id, self.created, self.job.model, piece, first=self.first
                )
            else:
                body = wire.openai_completion_chunk(self.id, self.created, self.job.model, piece)
            self.first = False
            out.append(wire.sse(body))
        return b"".join(out)

    def final(self, reason: str, stats: FinalStats) -> bytes:
        model = self.job.model
        if self.chat:
            head = self.chunks([""]) if self.first else b""
            last = wire.openai_chat_chunk(self.id, self.created, model, None, finish_reason=reason)
        else:
            head = b""
            last = wire.openai_completion_chunk(self.id, self.created, model, "", reason)
        out = head + wire.sse(last)
        if self.include_usage:
            kind = "chat.completion.chunk" if self.chat else "text_completion"
            usage = wire.openai_usage_chunk(
                self.id, kind, self.created, model, stats.prompt_eval_count, stats.eval_count
            )
            out += wire.sse(usage)
        return out + wire.SSE_DONE

    def whole(self, text: str, reason: str, stats: FinalStats) -> Any:
        build = wire.openai_chat_completion if self.chat else wire.openai_completion
        return build(
            self.id,
            self.created,
            self.job.model,
            text,
            reason,
            stats.prompt_eval_count,
            stats.eval_count,
        )

    def error(self, message: str) -> bytes:
        return wire.sse(wire.openai_error(message, 500))

    def malformed(self) -> bytes:
        return f'data: {{"id":"{self.id}","object":\n\n'.encode()


def _break_json(text: str) -> str:
    """Malformed JSON content: cut short and left with a dangling comma."""
    return text[: max(1, len(text) // 2)].rstrip() + ","


async def run_job(
    request: web.Request, engine: Engine, job: Job, out: Output, started: float
) -> web.StreamResponse:
    """Serve one generation: wait for a slot, prefill, then reply (streamed or whole)."""
    faults = engine.faults(job.spec)
    model = job.spec.name
    if faults.busy:
        engine.sim.note_fault(model)
        raise ApiError(503, wire.BUSY_MESSAGE)
    try:
        ticket = await engine.acquire(
            job.spec,
            job.options,
            keep_alive_s=job.keep_alive_s,
            tag=request.headers.get("X-Sim-Tag", ""),
            gone=lambda: client_gone(request),
        )
    except MaxQueueExceeded:
        raise ApiError(503, wire.BUSY_MESSAGE) from None
    finished = False
    try:
        response = await _serve(request, engine, job, out, faults, ticket, started)
        finished = True
        return response
    finally:
        if not finished:
            engine.cancel(ticket)


async def _serve(
    request: web.Request,
    engine: Engine,
    job: Job,
    out: Output,
    faults: FaultPlan,
    ticket: Ticket,
    started: float,
) -> web.StreamResponse:
    model = job.spec.name
    assigned = ticket.assigned_at if ticket.assigned_at is not None else started
    load_ns = max(int((assigned - started) * _NS), MIN_LOAD_NS)
    if faults.hang_s:
        engine.sim.note_fault(model)
        await asyncio.sleep(faults.hang_s)
    prefill_s = await engine.prefill(ticket, job.seen_tokens)
    if faults.slow_first_token_s:
        engine.sim.note_fault(model)
        await asyncio.sleep(faults.slow_first_token_s)
        prefill_s += faults.slow_first_token_s
    pieces, reason = job.reply(engine.settings.seed)
    if faults.malformed and job.fmt:
        engine.sim.note_fault(model)
        pieces = split_tokens(_break_json("".join(pieces)))
    if faults.error_after is not None and (faults.error_after == 0 or not job.stream):
        engine.sim.note_fault(model)
        engine.fail(ticket)
        raise ApiError(500, RUNNER_ERROR)
    if faults.drop_after is not None and not job.stream:
        engine.sim.note_fault(model)
        engine.fail(ticket)
        _drop(request)
        return web.Response(status=204)
    decode_start = engine.now()
    if not job.stream:
        async for _ in engine.decode(ticket, pieces):
            pass
        stats = _stats(job, engine, started, load_ns, prefill_s, decode_start, len(pieces))
        engine.finish(ticket)
        text = "".join(pieces)
        if faults.malformed and not job.fmt:
            engine.sim.note_fault(model)
            body = wire.dumps(out.whole(text, reason, stats))
            return web.Response(
                text=body[: len(body) // 2], content_type="application/json", charset="utf-8"
            )
        return json_response(out.whole(text, reason, stats))
    return await _stream(
        request, engine, job, out, faults, ticket, pieces, reason, started, load_ns, prefill_s
    )


async def _stream(
    request: web.Request,
    engine: Engine,
    job: Job,
    out: Output,
    faults: FaultPlan,
    ticket: Ticket,
    pieces: list[str],
    reason: str,
    started: float,
    load_ns: int,
    prefill_s: float,
) -> web.StreamResponse:
    model = job.spec.name
    response = web.StreamResponse(headers={"Content-Type": out.content_type})
    await response.prepare(request)
    stop_at = min(
        (n for n in (faults.error_after, faults.drop_after) if n is not None), default=None
    )
    planned = pieces if stop_at is None else pieces[:stop_at]
    malformed_at = len(planned) // 2 if faults.malformed and not job.fmt else -1
    decode_start = engine.now()
    sent = 0
    async for batch in engine.decode(ticket, planned):
        data = out.chunks(batch)
        if sent <= malformed_at < sent + len(batch):
            engine.sim.note_fault(model)
            data = out.malformed() + data
        await response.write(data)
        sent += len(batch)
    if stop_at is not None:
        engine.sim.note_fault(model)
        engine.fail(ticket)
        if faults.drop_after is not None and faults.drop_after == stop_at:
            _drop(request)
            return response
        await response.write(out.error(RUNNER_ERROR))
        return response
    stats = _stats(job, engine, started, load_ns, prefill_s, decode_start, len(pieces))
    engine.finish(ticket)
    await response.write(out.final(reason, stats))
    return response


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.close()


def _stats(
    job: Job,
    engine: Engine,
    started: float,
    load_ns: int,
    prefill_s: float,
    decode_start: float,
    eval_count: int,
) -> FinalStats:
    now = engine.now()
    eval_ns = max(
        int((now - decode_start) * _NS), int(eval_count / engine.settings.decode_tps * _NS)
    )
    prompt_ns = max(int(prefill_s * _NS), 1) if job.seen_tokens else 0
    total_ns = max(int((now - started) * _NS), load_ns + prompt_ns + eval_ns)
    return FinalStats(
        total_duration=total_ns,
        load_duration=load_ns,
        prompt_eval_count=job.seen_tokens,
        prompt_eval_duration=prompt_ns,
        eval_count=eval_count,
        eval_duration=eval_ns if eval_count else 0,
    )
