"""The dashboard's routes: the page, `POST /dashboard/session` and the `/stats/stream` feed.

They are the proxy's own, like `/stats`: none waits for a lane. The Host and Origin checks
apply as on every route. With a token configured, the static files (which hold no data) need
none, `/stats/stream` takes the token or a session value, and everything else needs the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from proxy.dashboard.assets import DATA_HEADERS, FILES, PAGE_HEADERS, asset
from proxy.dashboard.feed import Feed
from proxy.dashboard.sessions import SessionKeys

__all__ = ["SESSION_PATH", "STREAM_PATH", "Dashboard"]

STREAM_PATH = "/stats/stream"
SESSION_PATH = "/dashboard/session"
# What a stream may hold unsent beyond its feed buffer: the transport's buffer and the socket's
# send buffer (which the kernel doubles). Small, so a stalled reader fills its feed buffer within
# seconds and is dropped, and big enough for 10 frames a second over a slow link.
STREAM_WRITE_BUFFER = 32 * 1024
STREAM_HEADERS = {
    **DATA_HEADERS,
    "Content-Type": "text/event-stream; charset=utf-8",
    "X-Accel-Buffering": "no",  # a reverse proxy in front must not hold events back
}


class Dashboard:
    """The routes over one feed and one session key, and which requests need no token."""

    def __init__(self, feed: Feed, sessions: SessionKeys) -> None:
        self.feed = feed
        self.sessions = sessions

    def admits(self, request: web.Request) -> bool:
        """True for a request that may go on without the bearer token: a static file, or the
        feed with a valid session value."""
        if request.path == STREAM_PATH:
            return self.sessions.valid(request.query.get("session", ""))
        return request.method in ("GET", "HEAD") and request.path in FILES

    def attach(self, app: web.Application) -> None:
        """Add the routes to `app`, run the feed while it runs, end the streams at shutdown."""
        for path in FILES:
            app.router.add_get(path, self.page)
        app.router.add_post(SESSION_PATH, self.session)
        app.router.add_get(STREAM_PATH, self.stream)
        app.cleanup_ctx.append(self._feeding)
        app.on_shutdown.append(self._close)

    async def _feeding(self, app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self.feed.run())
        yield
        self.feed.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _close(self, app: web.Application) -> None:
        self.feed.close()

    async def page(self, request: web.Request) -> web.Response:
        """One of the page's static files."""
        name, content_type = FILES[request.path]
        headers = {**PAGE_HEADERS, "Content-Type": content_type}
        return web.Response(body=asset(name), headers=headers)

    async def session(self, request: web.Request) -> web.Response:
        """A fresh session value for `/stats/stream?session=` (the token was checked already)."""
        doc = {"session": self.sessions.mint(), "expires_in_s": self.sessions.ttl_s}
        return web.json_response(doc, headers=DATA_HEADERS)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: a frame at once, then one per change or second, until either
        side ends it; a reader that cannot keep up is cut (see `proxy.dashboard.feed`)."""
        task = asyncio.current_task()

        def cut() -> None:
            if request.transport is not None:
                request.transport.abort()
            if task is not None:
                task.cancel()

        subscriber = self.feed.subscribe(cut)  # FeedFull: 503 before any byte is sent
        try:
            response = web.StreamResponse(headers=STREAM_HEADERS)
            await response.prepare(request)
            _small_buffers(request)
            while (frame := await subscriber.next_frame()) is not None:
                await response.write(frame)
            return response
        finally:
            self.feed.unsubscribe(subscriber)


def _small_buffers(request: web.Request) -> None:
    """Bound what one stream holds in the transport and in the kernel (STREAM_WRITE_BUFFER)."""
    transport = request.transport
    if transport is None:
        return
    transport.set_write_buffer_limits(high=STREAM_WRITE_BUFFER)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_WRITE_BUFFER)
