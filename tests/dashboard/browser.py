"""Headless Chromium for the dashboard's tests, driven by Playwright: where it is, why it
cannot run here, and a page that keeps its console (docs/development.md says why Playwright)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = [
    "CHROMIUM_ENV",
    "FOREIGN_HOST",
    "REBINDING_HOST",
    "RESOLVER_RULES",
    "Tab",
    "TabFactory",
    "chromium_path",
    "missing",
]

CHROMIUM_ENV = "LANES_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Names the browser resolves to 127.0.0.1, to play a foreign site and a rebinding name.
FOREIGN_HOST, REBINDING_HOST = "foreign.test", "rebinding.test"
RESOLVER_RULES = f"MAP {FOREIGN_HOST} 127.0.0.1, MAP {REBINDING_HOST} 127.0.0.1"


def chromium_path() -> str | None:
    """The Chromium to drive: $LANES_CHROMIUM, else the first on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    return next(filter(None, (shutil.which(name) for name in CHROMIUM_NAMES)), None)


def missing() -> str | None:
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
