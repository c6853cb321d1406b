"""The Python floor: a bare aiohttp pass-through (streaming; no queue, no stats, no checks).

`python -m bench.floor PORT UPSTREAM` serves 127.0.0.1:PORT and relays every request to
UPSTREAM chunk by chunk, on uvloop, with one pooled client session: what any aiohttp proxy
costs before it does anything of its own. The overhead scenario measures `lanes serve` as a
ratio to it (issue 16).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import aiohttp
import uvloop
from aiohttp import web

__all__ = ["make_app"]

_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
)


def make_app(upstream: str) -> web.Application:
    """The pass-through app for `upstream` (a base URL without a trailing slash)."""
    app = web.Application(client_max_size=256 * 2**20)
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as s:
            app[session_key] = s
            yield

    async def relay(request: web.Request) -> web.StreamResponse:
        head = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with app[session_key].request(
            request.method,
            upstream + request.rel_url.raw_path_qs,
            headers=head,
            data=await request.read(),
            allow_redirects=False,
        ) as up:
            out = web.StreamResponse(
                status=up.status,
                headers={k: v for k, v in up.headers.items() if k.lower() not in _HOP},
            )
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", relay)
    return app


def main() -> None:
    """Serve the floor on the port and upstream given on the command line."""
    port, upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
    uvloop.install()
    web.run_app(make_app(upstream), host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
