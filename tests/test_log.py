"""Logging: libraries' stdlib records become one structlog line, tracebacks only in debug."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from proxy.log import configure_logging


@pytest.fixture(name="restore")
def _restore() -> Iterator[None]:
    """Put structlog and the bridged stdlib loggers back as they were."""
    saved = structlog.get_config()
    library = logging.getLogger("aiohttp.server")
    handlers, propagate, level = list(library.handlers), library.propagate, library.level
    try:
        yield
    finally:
        structlog.configure(**saved)
        library.handlers, library.propagate = handlers, propagate
        library.setLevel(level)


def _malformed_request_error() -> None:
    try:
        raise ValueError("400, message: Invalid method encountered")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("Error handling request from 127.0.0.1")


@pytest.mark.usefixtures("restore")
class TestStdlibBridge:
    def test_one_line_without_traceback_at_info(self) -> None:
        """aiohttp's "Error handling request" is one event with the error, no traceback."""
        configure_logging("info", json=True)
        with structlog.testing.capture_logs() as logs:
            _malformed_request_error()
        assert logs == [
            {
                "event": "library_log",
                "log_level": "error",
                "logger": "aiohttp.server",
                "message": "Error handling request from 127.0.0.1",
                "error": "ValueError: 400, message: Invalid method encountered",
            }
        ]

    def test_the_traceback_comes_back_in_debug(self) -> None:
        """With log_level debug the same event carries the exception for its traceback."""
        configure_logging("debug", json=True)
        with structlog.testing.capture_logs() as logs:
            _malformed_request_error()
        assert len(logs) == 1
        assert "exc_info" in logs[0]
