"""Fixture: the structlog events a test caused, at every level."""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog


@pytest.fixture(name="captured_logs")
def _captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """structlog events at every level, whatever another test configured; restored after."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)
