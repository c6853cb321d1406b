"""Binding the simulator to a socket: start, wait for a signal, stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from aiohttp import web

from proxy.settings import split_listen
from proxy.simulator.app import create_app
from proxy.simulator.settings import SimulatorSettings

__all__ = ["RunningSimulator", "serve", "start"]

# SIGINT: Ctrl-C in a terminal. SIGTERM: launchd, systemd and `kill` asking us to stop.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunningSimulator:
    """A started simulator: its base URL and how to stop it."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(settings: SimulatorSettings) -> RunningSimulator:
    """Bind `settings.listen` (port 0 picks a free port) and start serving."""
    host, port = split_listen(settings.listen)
    runner = web.AppRunner(create_app(settings), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    server = site._server  # aiohttp exposes the bound socket only here
    sockets = getattr(server, "sockets", None)
    if sockets:
        bound = sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return RunningSimulator(runner, f"http://{shown}:{bound}")


async def serve(
    settings: SimulatorSettings, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Run until SIGINT or SIGTERM."""
    running = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in HANDLED_SIGNALS:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready is not None:
            on_ready(running.url)
        await stop.wait()
    finally:
        for sig in HANDLED_SIGNALS:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
        await running.stop()
