"""Binding the simulator to a socket: start, wait for a signal, stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from proxy.listener import Listener, start_app
from proxy.simulator.app import create_app
from proxy.simulator.settings import SimulatorSettings

__all__ = ["serve", "start"]

# SIGINT: Ctrl-C in a terminal. SIGTERM: launchd, systemd and `kill` asking us to stop.
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def start(settings: SimulatorSettings) -> Listener:
    """Bind `settings.listen` (port 0 picks a free port) and start serving."""
    return await start_app(create_app(settings), settings.listen)


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
