"""An aiohttp app bound to a socket inside the running loop: start it, read its URL, stop it."""

from __future__ import annotations

from aiohttp import web

from proxy.settings import split_listen

__all__ = ["Listener", "start_app"]


class Listener:
    """A started app: its base URL and how to stop it."""

    def __init__(self, runner: web.AppRunner, url: str) -> None:
        self.runner = runner
        self.url = url

    async def stop(self) -> None:
        """Close the socket and clean the app up."""
        await self.runner.cleanup()


async def start_app(app: web.Application, listen: str) -> Listener:
    """Bind `listen` (port 0 picks a free port); disconnects cancel their handlers."""
    host, _ = split_listen(listen)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, split_listen(listen)[1])
    await site.start()
    bound = runner.addresses[0][1]  # the port the system chose for port 0
    shown = f"[{host}]" if ":" in host else host
    return Listener(runner, f"http://{shown}:{bound}")
