"""serve(settings): bind, run until SIGTERM or SIGINT, then drain; the only module binding sockets.

Shutdown, in order:
1. a handled signal sets the stop event;
2. the listening socket closes, so no new connections are accepted;
3. the gate closes: every queued request is answered 503 and new inference requests too;
   the dashboard's live feeds end (open pages show that they are disconnected);
4. running requests (laned and pass-through) get up to `drain_timeout_s` to finish; those
   still running are cancelled, which closes their upstream connections;
5. the runner shuts down (idle keep-alive connections, then the upstream session).
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable
from typing import TypedDict

import structlog
from aiohttp import web

from proxy.config import SettingsError
from proxy.log import configure_logging
from proxy.machine.limits import raise_open_file_limit
from proxy.machine.speedups import speedups
from proxy.relay.app import FEED, GATE, INFLIGHT, apply_settings, create_app
from proxy.settings import ProxySettings, split_listen
from proxy.status import ExitStatus

__all__ = ["HANDLED_SIGNALS", "Reload", "RunnerOptions", "run", "runner_options", "serve"]

log = structlog.get_logger("proxy.relay.server")

_CLEANUP_S = 0.5  # for requests that arrive on kept-alive connections during the drain
FULL_COLLECTION_EVERY = 100  # gen1 collections between full ones (Python's default: 10)

HANDLED_SIGNALS = (
    signal.SIGINT,  # Ctrl-C in a terminal
    signal.SIGTERM,  # kill, `launchctl bootout`, `systemctl stop`
)  # and SIGHUP (`kill -HUP`, `lanes tune --apply`): read the settings and the lane map again


Reload = Callable[[], ProxySettings]
"""Loads the settings again (the config file, the environment, the same flags): for SIGHUP."""


def serve(settings: ProxySettings, reload: Reload | None = None) -> int:
    """Run the proxy until a handled signal and a drain; uses uvloop when it is installed."""
    configure_logging(settings.log_level, cache=True)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(run(settings, reload))
    status: int = uvloop.run(run(settings, reload))
    return status


def _reloaded(app: web.Application, reload: Reload) -> None:
    """SIGHUP: read the settings again and apply what can change while running."""
    try:
        fresh = reload()
    except SettingsError as exc:
        log.error("reload_failed", error=str(exc))
        return
    restart = apply_settings(app, fresh)
    log.info("settings_reloaded", needs_restart=restart)


class RunnerOptions(TypedDict):
    """Keyword arguments for aiohttp's AppRunner (and pytest-aiohttp's test server)."""

    keepalive_timeout: float


def runner_options(settings: ProxySettings) -> RunnerOptions:
    """Connection options of the proxy's server, shared by `serve` and the tests.

    aiohttp closes a connection that has not sent a whole request head within its
    `keepalive_timeout`, counted from the connection's start and again after each answer: the
    header timeout. Slow-header clients (slowloris) are closed by it, and so are idle
    keep-alive connections, which clients simply reopen.
    """
    return {"keepalive_timeout": settings.timeout_client_header_s}


async def run(settings: ProxySettings, reload: Reload | None = None) -> int:
    """Serve on the running loop; returns the exit status."""
    app = create_app(settings)
    gate, inflight = app[GATE], app[INFLIGHT]
    runner = web.AppRunner(
        app,
        handle_signals=False,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=_CLEANUP_S,
        **runner_options(settings),
    )
    before, after = raise_open_file_limit()
    await runner.setup()
    host, port = split_listen(settings.listen)
    site = web.TCPSite(runner, host, port, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        log.error("listen_failed", listen=settings.listen, error=str(exc))
        await runner.cleanup()
        return ExitStatus.UNAVAILABLE
    # Everything built so far lives as long as the process: keep it out of the collector's
    # scans, so a deep queue of live requests does not make each collection dearer.
    gc.collect()
    gc.freeze()
    # Queued requests are long-lived too: with the default every tenth gen1 collection (about
    # every 1,000 arrivals) walked all of them, which made admission at 10,000 queued ~1.7x
    # dearer than at 1,000. Young garbage is collected as often as before.
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in HANDLED_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, _reloaded, app, reload)
    address = "{}:{}".format(*runner.addresses[0][:2])
    hosts = {spec.name: spec.url for spec in settings.upstream_specs()}
    upstream = next(iter(hosts.values())) if len(hosts) == 1 else hosts
    log.info(
        "serve_started",
        address=address,
        upstream=upstream,
        lanes=gate.lanes,
        open_files=after,
        open_files_before=before,
    )
    missing = [s.name for s in speedups() if not s.loaded]
    if missing:  # each request then costs several times the CPU; `lanes doctor` says why
        log.warning("speedups_missing", missing=missing)
    if "stats_poll_s" in settings.model_fields_set:
        log.warning("setting_ignored", setting="stats_poll_s", use="health_interval_s")
    try:
        await stop.wait()
    finally:
        for sig in (*HANDLED_SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    log.info("drain_started", running=gate.busy, queued=gate.depth)
    deadline = loop.time() + settings.drain_timeout_s
    await site.stop()
    refused = gate.close()
    app[FEED].close()
    cut = 0
    try:
        async with asyncio.timeout_at(deadline):
            await inflight.wait_empty()
    except TimeoutError:
        cut = inflight.cancel_all()
    await runner.cleanup()
    log.info("serve_stopped", refused_queued=refused, cut_running=cut)
    return ExitStatus.SUCCESS
