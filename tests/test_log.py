"""Logging: libraries' stdlib records become one structlog line, tracebacks only in debug."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

from proxy.log import configure_logging, log_access


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


_FIELDS = {"method": "POST", "path": "/api/\u00fc", "status": 200, "reason": None, "ms": 3}


@pytest.mark.usefixtures("restore")
class TestAccessLine:
    def test_lanes_serve_prints_it_past_the_chain(self, capsys: pytest.CaptureFixture[str]) -> None:
        """With loggers cached and JSON lines (lanes serve's mode) the access line is printed
        without running the processor chain: a capture of the chain sees nothing."""
        try:
            configure_logging("info", json=True, cache=True)
            with structlog.testing.capture_logs() as captured:
                log_access(dict(_FIELDS))
        finally:
            configure_logging("info", json=True)
        assert captured == []
        assert json.loads(capsys.readouterr().err)["event"] == "request_finished"

    def test_printed_directly_as_the_chain_prints_it(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The line printed past the chain has the chain's bytes: the same keys in the same
        order with the same values, and a UTC timestamp in the same format."""
        try:
            configure_logging("info", json=True, cache=True)
            log_access(dict(_FIELDS))
            direct = capsys.readouterr().err
        finally:
            configure_logging("info", json=True)
        log_access(dict(_FIELDS))
        chained = capsys.readouterr().err
        assert chained.split('"timestamp"')[0] == direct.split('"timestamp"')[0]
        stamps = [json.loads(line)["timestamp"] for line in (chained, direct)]
        assert [datetime.fromisoformat(s).tzinfo for s in stamps] == [UTC, UTC]
        assert [s.endswith("Z") for s in stamps] == [True, True]
