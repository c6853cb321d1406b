"""Fixtures for the dashboard's tests: captured logs, and headless Chromium for the page."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import structlog

if TYPE_CHECKING:
    from playwright.async_api import Page


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


# ---- headless Chromium, driven by Playwright (see docs/development.md for why) ----

CHROMIUM_ENV = "LANES_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Names the browser resolves to 127.0.0.1, to play a foreign site and a rebinding name.
FOREIGN_HOST, REBINDING_HOST = "foreign.test", "rebinding.test"
_skipped: list[str] = []


def chromium_path() -> str | None:
    """The Chromium to drive: $LANES_CHROMIUM, else the first on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    return next(filter(None, (shutil.which(name) for name in CHROMIUM_NAMES)), None)


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install -e '.[test]')"
    if chromium_path() is None:
        return (
            "no Chromium on PATH (make test installs Debian's chromium when run as root; "
            f"or apt-get install chromium, or set {CHROMIUM_ENV})"
        )
    return None


@dataclass
class Tab:
    """A page in headless Chromium, with every console message and uncaught error it made."""

    page: Page
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def console_errors(self) -> list[str]:
        """Console messages of type error (failed loads and CSP violations among them)."""
        return [text for kind, text in self.console if kind == "error"]


TabFactory = Callable[[], Awaitable[Tab]]


@pytest.fixture(name="tab")
async def _tab() -> AsyncIterator[TabFactory]:
    """Factory: `tab = await tab()` opens a fresh page in one headless Chromium per test."""
    reason = _missing()
    if reason is not None:
        _skipped.append(reason)
        pytest.skip(f"BROWSER TEST SKIPPED: {reason}")
    from playwright.async_api import async_playwright

    rules = f"MAP {FOREIGN_HOST} 127.0.0.1, MAP {REBINDING_HOST} 127.0.0.1"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=[f"--host-resolver-rules={rules}"]
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 900})

        async def open_tab() -> Tab:
            page = await context.new_page()
            tab = Tab(page)
            page.on("console", lambda message: tab.console.append((message.type, message.text)))
            page.on("pageerror", lambda error: tab.errors.append(str(error)))
            return tab

        try:
            yield open_tab
        finally:
            await browser.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say it loudly at the end of the run when the browser tests were skipped."""
    if _skipped:
        terminalreporter.write_sep(
            "!", f"{len(_skipped)} BROWSER TESTS SKIPPED", red=True, bold=True
        )
        terminalreporter.write_line(f"why: {_skipped[0]}", red=True, bold=True)
