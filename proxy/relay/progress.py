"""Progress: SSE comments that tell a waiting `/v1` stream its place in the queue.

A client that asks with `X-Lanes-Progress: sse` for a streamed `/v1` answer, and has to wait
for a lane, is answered at once: `200`, `text/event-stream`, the X-Lanes-* headers known so
far, and a comment line `: queued position=P eta_ms=E` now and every `interval_s` until a lane
is granted. SSE parsers skip comments. The relay then continues the same answer with the
upstream's body, and an error after the early headers becomes one SSE event in OpenAI's error
envelope (`data: {"error": {...}}`), which the `openai` client raises as an APIError.
Native (NDJSON) routes never get progress.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import structlog
from aiohttp import web

from proxy.ollama import error_body, is_openai
from proxy.relay import headers
from proxy.relay.gate import Lease

__all__ = [
    "PROGRESS",
    "SSE",
    "Progress",
    "comment",
    "error_event",
    "upstream_error_event",
    "wanted",
]

log = structlog.get_logger("proxy.relay.progress")

SSE = "sse"  # the one value of X-Lanes-Progress the proxy knows
_COMPACT = (",", ":")


def wanted(path: str, stream: bool, header: str | None) -> bool:
    """True when a request gets progress comments: a streamed `/v1` answer that asked for them."""
    return is_openai(path) and stream and (header or "").strip().lower() == SSE


def comment(position: int, eta_s: float) -> bytes:
    """One SSE comment: the place in the queue (1-based) and the estimated wait in ms."""
    return f": queued position={position} eta_ms={round(eta_s * 1000)}\n\n".encode()


def error_event(path: str, status: int, message: str) -> bytes:
    """The proxy's own error as one SSE event, in the body `error_body` gives the path."""
    return b"data: " + error_body(path, status, message) + b"\n\n"


def upstream_error_event(path: str, status: int, raw: bytes) -> bytes:
    """An upstream's error answer as one SSE event: its own envelope when it sent one (Ollama's
    `/v1` does), else its message (or its status) in the path's envelope."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        return b"data: " + json.dumps(doc, separators=_COMPACT).encode() + b"\n\n"
    if isinstance(error, str):
        return error_event(path, status, error)
    text = raw.decode("utf-8", errors="replace").strip()
    return error_event(path, status, text or f"the upstream answered HTTP {status}")


class Progress:
    """The early answer of one waiting `/v1` stream, written by a task of its own.

    `begin` (the lease's `on_queued`) starts it; `end` stops the comments once the wait is over
    and hands the started answer to the relay; `fail` ends it with the proxy's own error.
    Every write is bounded by `write_s`: a client that takes nothing that long is cut off
    (`on_stall` is told) and its wait cancelled, as is the wait of a client that is gone.
    """

    __slots__ = ("_interval_s", "_on_stall", "_owner", "_request", "_task", "_write_s", "response")

    def __init__(
        self,
        request: web.Request,
        *,
        interval_s: float,
        write_s: float,
        on_stall: Callable[[], None],
    ) -> None:
        self._request = request
        self._interval_s, self._write_s = interval_s, write_s
        self._on_stall = on_stall
        self._owner: asyncio.Task[object] | None = None  # the task that waits for the lane
        self._task: asyncio.Task[None] | None = None  # the writer
        self.response: web.StreamResponse | None = None

    @property
    def started(self) -> bool:
        """True once the early answer is prepared: its status and headers are committed."""
        return self.response is not None and self.response.prepared

    def begin(self, lease: Lease) -> None:
        """The request waits for a lane: answer it at once and comment until it is granted."""
        self._owner = asyncio.current_task()
        self._task = asyncio.create_task(self._run(lease))

    async def end(self) -> web.StreamResponse | None:
        """Stop the comments (idempotent); the early answer, if it started, for the relay."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("progress_failed", error=f"{type(exc).__name__}: {exc}")
        return self.response if self.started else None

    async def fail(self, status: int, message: str) -> web.StreamResponse:
        """End the started answer with the proxy's own error (`status`, `message`) as an event."""
        out = self.response
        assert out is not None
        try:
            await self._write(out, error_event(self._request.path, status, message))
            await out.write_eof()
        except (ConnectionResetError, TimeoutError):
            pass  # the client is gone or stalled: the error stays the request's outcome
        return out

    async def _run(self, lease: Lease) -> None:
        position, eta_s = lease.progress()
        if not position:  # granted before this task ran: the relay answers as usual
            return
        out = web.StreamResponse(status=200, headers=self._headers(lease))
        self.response = out
        try:
            await out.prepare(self._request)
            while position:
                await self._write(out, comment(position, eta_s))
                await asyncio.sleep(self._interval_s)
                position, eta_s = lease.progress()
        except TimeoutError:
            log.warning("client_stalled", client=lease.facts.client, path=self._request.path)
            self._on_stall()
            self._cancel_wait()
        except ConnectionResetError:
            self._cancel_wait()

    @staticmethod
    def _headers(lease: Lease) -> dict[str, str]:
        return {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            headers.QUEUE_POSITION: str(lease.position),
            headers.CLIENT: lease.facts.client,
        }

    async def _write(self, out: web.StreamResponse, data: bytes) -> None:
        """Write `data`; a write that makes no progress for `write_s` cuts the client off."""
        try:
            async with asyncio.timeout(self._write_s):
                await out.write(data)
        except TimeoutError:
            transport = self._request.transport
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            raise

    def _cancel_wait(self) -> None:
        """The client cannot hear any more: its wait ends, and with it its ticket."""
        if self._owner is not None:
            self._owner.cancel()


PROGRESS = web.RequestKey("progress", Progress)
