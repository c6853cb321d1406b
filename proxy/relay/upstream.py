"""The upstream side: one shared ClientSession, and the relay that streams a response through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import IO

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from proxy import errors
from proxy.ollama import error_body
from proxy.relay import headers
from proxy.relay.outcome import Relayed
from proxy.relay.progress import upstream_error_event
from proxy.relay.watchdog import Watchdog
from proxy.settings import ProxySettings

__all__ = ["Body", "Upstream", "open_session"]

log = structlog.get_logger("proxy.relay.upstream")

Body = bytes | IO[bytes] | aiohttp.StreamReader | None

_ERROR_BODY_CAP = 64 * 1024  # an error answer longer than this is cut to it


def open_session(settings: ProxySettings) -> aiohttp.ClientSession:
    """The one client session: a keep-alive pool, bytes relayed as they come (no decoding)."""
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_connections, limit_per_host=0, keepalive_timeout=30
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        # The client's own User-Agent and Accept-Encoding travel as they are, or not at all.
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.timeout_connect_s),
    )


class _ClientGone(Exception):
    """A write to the client failed: it hung up (aiohttp's disconnect mode without cancellation)."""

    def __init__(self, sent: int) -> None:
        super().__init__(sent)
        self.sent = sent


class Upstream:
    """Sends requests to the upstream's base URL and relays the answers chunk by chunk."""

    def __init__(
        self,
        settings: ProxySettings,
        session: aiohttp.ClientSession,
        *,
        base: str | None = None,
        auth: str | None = None,
    ) -> None:
        self.base = settings.upstream if base is None else base
        self._origin = URL(self.base)
        self._auth = auth  # an Authorization value this host needs, replacing the client's
        self._session = session
        self._connect_s = settings.timeout_connect_s
        self._first_byte_s = settings.timeout_first_byte_s
        self._idle_s = settings.timeout_idle_s
        self._write_s = settings.timeout_client_write_s

    async def relay(
        self,
        request: web.Request,
        body: Body,
        send_headers: Sequence[tuple[str, str]],
        *,
        client: str,
        extra_headers: Sequence[tuple[str, str]] = (),
        on_headers: Callable[[int], None] | None = None,
        on_chunk: Callable[[bytes], None] | None = None,
        on_stall: Callable[[], None] | None = None,
        out: web.StreamResponse | None = None,
    ) -> tuple[web.StreamResponse, Relayed]:
        """Forward `request` and stream the answer back; raises ProxyError before the first byte.

        A client that reads nothing for `timeout_client_write_s` loses the answer: the
        upstream request is aborted, the client's connection too, and `on_stall` is told.
        `out` is an answer already started for this client (SSE progress while it waited):
        only the upstream's body goes into it, and an error status becomes one SSE event.
        """
        resp = await self._open(request.method, request.rel_url, send_headers, body)
        sent, error, clean = 0, None, False
        dog = Watchdog(resp, request.transport, idle_s=self._idle_s, write_s=self._write_s)
        early = out is not None
        try:
            if on_headers is not None:
                on_headers(resp.status)
            if out is None:
                out = web.StreamResponse(
                    status=resp.status,
                    reason=resp.reason,
                    headers=headers.response_headers(resp.headers.items(), extra=extra_headers),
                )
            try:
                dog.writing()
                await out.prepare(request)  # an early answer is prepared already
                if early and resp.status >= 400:
                    sent = await self._error_event(request.path, resp, out, on_chunk, dog)
                else:
                    sent, error = await self._stream(resp, out, on_chunk, dog)
                dog.writing()
                if error is not None:
                    await self._end_with_error(request.path, resp, out, error, sent)
                await out.write_eof()
                dog.written()
            except (_ClientGone, ConnectionResetError) as exc:
                sent = exc.sent if isinstance(exc, _ClientGone) else sent
                stalled = dog.fired == "client_stalled"
                return out, Relayed(resp.status, sent, error, client_gone=True, stalled=stalled)
            clean = error is None
            return out, Relayed(resp.status, sent, error)
        finally:
            dog.cancel()
            if dog.fired == "client_stalled":
                log.warning("client_stalled", client=client, path=request.path, bytes=sent)
                if on_stall is not None:
                    on_stall()
            if clean:
                resp.release()
            else:
                resp.close()  # closing the connection is the only cancel Ollama understands

    async def _stream(
        self,
        resp: aiohttp.ClientResponse,
        out: web.StreamResponse,
        on_chunk: Callable[[bytes], None] | None,
        dog: Watchdog,
    ) -> tuple[int, str | None]:
        sent = 0
        content = resp.content
        dog.written()
        while True:
            try:
                chunk = await content.readany()
            except (aiohttp.ClientError, OSError) as exc:
                if dog.fired == "upstream_idle":
                    return sent, f"upstream {self.base} sent nothing for {self._idle_s:g} s"
                return sent, f"upstream {self.base} ended the stream early: {exc or 'closed'}"
            if not chunk:
                return sent, None
            dog.chunk_read()
            try:
                await out.write(chunk)
            except ConnectionResetError as exc:
                raise _ClientGone(sent) from exc
            dog.written()
            sent += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk)

    async def _error_event(
        self,
        path: str,
        resp: aiohttp.ClientResponse,
        out: web.StreamResponse,
        on_chunk: Callable[[bytes], None] | None,
        dog: Watchdog,
    ) -> int:
        """An error answer under an early SSE answer: read it (it is small), send one event."""
        raw = b""
        dog.written()
        try:
            while len(raw) < _ERROR_BODY_CAP and (chunk := await resp.content.readany()):
                dog.chunk_read()
                dog.written()
                raw += chunk
        except (aiohttp.ClientError, OSError):
            pass  # what came is the message; the event says the status in any case
        if raw and on_chunk is not None:
            on_chunk(raw)
        event = upstream_error_event(path, resp.status, raw[:_ERROR_BODY_CAP])
        dog.writing()
        try:
            await out.write(event)
        except ConnectionResetError as exc:
            raise _ClientGone(0) from exc
        dog.written()
        return len(event)

    async def _end_with_error(
        self,
        path: str,
        resp: aiohttp.ClientResponse,
        out: web.StreamResponse,
        message: str,
        sent: int,
    ) -> None:
        """End a started stream the way Ollama does; a plain body is cut off instead."""
        log.warning(
            "upstream_failed_mid_stream",
            upstream=self.base,
            path=path,
            status=resp.status,
            bytes=sent,
            error=message,
        )
        content_type = resp.content_type
        if content_type == "application/x-ndjson":
            await out.write(error_body(path, 500, message) + b"\n")
        elif content_type == "text/event-stream":
            await out.write(b"data: " + error_body(path, 500, message) + b"\n\n")
        else:
            out.force_close()

    async def _open(
        self, method: str, target: URL, send_headers: Sequence[tuple[str, str]], body: Body
    ) -> aiohttp.ClientResponse:
        """Send the request and wait for the status line and headers; never retried, since
        Ollama may already have started generating.

        The URL is the configured base plus the request's path and query, built part by part:
        no request target can change the scheme, host or port it goes to.
        """
        origin = self._origin
        url = URL.build(
            scheme=origin.scheme,
            authority=origin.raw_authority,
            path=origin.raw_path.rstrip("/") + target.raw_path,
            query_string=target.raw_query_string,
            encoded=True,
        )
        if self._auth is not None:
            own = [(k, v) for k, v in send_headers if k.lower() != "authorization"]
            send_headers = [*own, ("Authorization", self._auth)]
        try:
            async with asyncio.timeout(self._first_byte_s):
                return await self._session.request(
                    method, url, headers=send_headers, data=body, allow_redirects=False
                )
        except aiohttp.ServerDisconnectedError as exc:
            raise errors.UpstreamUnavailable(
                f"upstream {self.base} closed the connection before answering"
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise errors.UpstreamUnavailable(
                f"upstream {self.base} refused the connection; is Ollama running? ({exc.os_error})"
            ) from exc
        except aiohttp.ConnectionTimeoutError as exc:
            raise errors.UpstreamTimeout(
                f"could not connect to upstream {self.base} within {self._connect_s:g} s"
            ) from exc
        except TimeoutError as exc:
            raise errors.UpstreamTimeout(
                f"upstream {self.base} sent no response within {self._first_byte_s:g} s"
            ) from exc
        except aiohttp.ClientError as exc:
            raise errors.UpstreamUnavailable(
                f"upstream {self.base} failed before answering: {exc}"
            ) from exc
