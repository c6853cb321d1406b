"""Structured logging, configured once: console on a terminal, JSON lines otherwise."""

from __future__ import annotations

import json as jsonlib
import logging
import sys
from typing import Any

import structlog

__all__ = ["StdlibBridge", "configure_logging"]

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
    global _configured
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
    bridge = StdlibBridge(tracebacks=numeric <= logging.DEBUG)
    for name in _BRIDGED:
        library = logging.getLogger(name)
        library.handlers = [bridge]
        library.propagate = False
        library.setLevel(numeric)
    _configured = True
