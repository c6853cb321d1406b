"""The simulator app plus a timeline of served requests: `python -m bench.simhost SPEC_JSON`.

It serves `proxy.simulator.app.create_app(settings)` unchanged and adds one middleware that
records, per inference request answered 200, when it arrived and when its answer was
written. `GET /_bench/timeline` returns the `[arrived, ended]` pairs (`time.monotonic()`,
comparable across processes); `POST /_bench/timeline` clears them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from typing import Any

from aiohttp import web

from proxy.simulator.app import create_app
from proxy.simulator.settings import SimulatorSettings

__all__ = ["build_app", "main"]

_INFERENCE = ("/api/generate", "/api/chat", "/v1/chat/completions", "/v1/completions")


def build_app(settings: SimulatorSettings) -> web.Application:
    """The simulator's app with the timeline middleware and endpoint added."""
    app = create_app(settings)
    timeline: list[list[float]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        arrived = time.monotonic()
        response: web.StreamResponse = await handler(request)
        if request.path in _INFERENCE and response.status == 200:
            timeline.append([arrived, time.monotonic()])
        return response

    async def get_timeline(request: web.Request) -> web.Response:
        return web.json_response({"requests": timeline})

    async def clear_timeline(request: web.Request) -> web.Response:
        timeline.clear()
        return web.json_response({"cleared": True})

    app.middlewares.append(record)
    app.router.add_get("/_bench/timeline", get_timeline)
    app.router.add_post("/_bench/timeline", clear_timeline)
    return app


async def _serve(settings: SimulatorSettings, port: int) -> None:
    runner = web.AppRunner(build_app(settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Serve on the spec's port until SIGTERM; spec: {"port": P, "settings": {...}}."""
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])
    settings = SimulatorSettings(**spec["settings"])
    try:
        import uvloop

        uvloop.run(_serve(settings, int(spec["port"])))
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(_serve(settings, int(spec["port"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
