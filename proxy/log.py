"""Structured logging, configured once: console on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import structlog

__all__ = ["ACCESS_EVENT", "StdlibBridge", "configure_logging", "log_access"]

ACCESS_EVENT = "request_finished"
_access = structlog.get_logger("proxy.access")
# Set by configure_logging(cache=True) with JSON lines at info or below: where `log_access`
# prints its line itself, to the bytes structlog's chain would print (see log_access).
_direct: structlog.PrintLogger | None = None
_configured = False
# Libraries that log through the standard library; their records become one structlog line.
_BRIDGED = ("aiohttp.server", "aiohttp.web", "aiohttp.client", "asyncio")


def _fallback(value: Any) -> Any:
    """What JSON cannot hold natively: its `__structlog__()`, else its repr (structlog's rule)."""
    try:
        return value.__structlog__()
    except AttributeError:
        return repr(value)


# One encoder for every line: `json.dumps(..., default=...)` would build a new one per call.
_ENCODE = jsonlib.JSONEncoder(default=_fallback).encode


def _serialize(event: Any, **_: Any) -> str:
    return _ENCODE(event)


def log_access(fields: dict[str, Any]) -> None:
    """The one line per request: `request_finished` at info with `fields`, in their order.

    In `lanes serve` (JSON lines, loggers cached) the line is rendered here: `fields`, then
    `event`, `level` and `timestamp`, as `configure_logging`'s chain orders them, through the
    same encoder and the same locked printer; no processor calls, about a third of the cost.
    Anywhere else (a terminal, tests capturing events, bound contextvars) structlog renders it.
    """
    printer = _direct
    if printer is None or structlog.contextvars.get_contextvars():
        _access.info(ACCESS_EVENT, **fields)
        return
    fields["event"] = ACCESS_EVENT
    fields["level"] = "info"
    fields["timestamp"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    printer.msg(_ENCODE(fields))


class StdlibBridge(logging.Handler):
    """Turns a library's stdlib log record into one structlog event: no traceback unless the
    level is debug (a malformed request is the client's error, not a crash of ours)."""

    def __init__(self, *, tracebacks: bool) -> None:
        super().__init__()
        self._tracebacks = tracebacks

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields["error"] = f"{type(exc).__name__}: {exc}"
            if self._tracebacks:
                fields["exc_info"] = record.exc_info
        level = "error" if record.levelno >= logging.ERROR else "warning"
        if record.levelno < logging.WARNING:
            level = "debug"
        getattr(structlog.get_logger("stdlib"), level)("library_log", **fields)


def configure_logging(
    level: str = "info", *, json: bool | None = None, cache: bool = False
) -> None:
    """Set up structlog for the process; later calls only change the level.

    `cache`: each logger binds its configuration on first use instead of on every call (a
    long-running process such as `lanes serve`, whose level only changes with a restart).
    """
    global _configured, _direct
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_serialize)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=cache,
    )
    direct = cache and use_json and numeric <= logging.INFO
    _direct = structlog.PrintLogger(file=sys.stderr) if direct else None
    bridge = StdlibBridge(tracebacks=numeric <= logging.DEBUG)
    for name in _BRIDGED:
        library = logging.getLogger(name)
        library.handlers = [bridge]
        library.propagate = False
        library.setLevel(numeric)
    _configured = True
