"""Fixtures for the dashboard's tests: headless Chromium for the page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.dashboard.browser import RESOLVER_RULES, Tab, TabFactory, chromium_path, missing

_skipped: list[str] = []  # why the browser tests were skipped, once per skipped test


@pytest.fixture(name="tab")
async def _tab() -> AsyncIterator[TabFactory]:
    """Factory: `tab = await tab()` opens a fresh page in one headless Chromium per test."""
    reason = missing()
    if reason is not None:
        _skipped.append(reason)
        pytest.skip(f"BROWSER TEST SKIPPED: {reason}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=[f"--host-resolver-rules={RESOLVER_RULES}"]
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
