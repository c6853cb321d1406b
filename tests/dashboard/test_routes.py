"""The dashboard's routes through real sockets: the page, its headers and the token rules."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import aiohttp
import pytest

from proxy.dashboard.assets import CSP, FILES, file_names
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url

TOKEN = "dashboard-test-token"
STATIC = sorted(FILES)
ROOT = Path(__file__).resolve().parents[2]


async def _get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers or {}) as resp,
    ):
        body = await resp.read() if "event-stream" not in resp.content_type else b""
        return resp.status, dict(resp.headers), body


class TestPage:
    @pytest.mark.parametrize("path", STATIC)
    async def test_every_file_is_served_with_its_type_and_the_strict_headers(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, path: str
    ) -> None:
        """Each static file: 200, its Content-Type, the CSP, nosniff and no-referrer."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        status, headers, body = await _get(base_url(prx) + path)
        name, content_type = FILES[path]
        assert (200, content_type) == (status, headers["Content-Type"])
        assert (
            headers["Content-Security-Policy"],
            headers["X-Content-Type-Options"],
            headers["Referrer-Policy"],
        ) == (CSP, "nosniff", "no-referrer")
        assert (resources.files("proxy.dashboard") / "static" / name).read_bytes() == body

    async def test_the_page_needs_no_token_but_its_data_does(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With a token set: the static files answer 200 without it; the feed, the session
        route and /stats answer 401."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        url = base_url(prx)
        statics = [(await _get(url + path))[0] for path in STATIC]
        data = [
            (await _get(url + "/stats/stream"))[0],
            (await _get(url + "/dashboard/session", method="POST"))[0],
            (await _get(url + "/stats"))[0],
        ]
        assert ([200] * len(STATIC), [401, 401, 401]) == (statics, data)

    async def test_a_rebinding_host_cannot_load_the_page(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The Host check applies to the dashboard as to every route: 403."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        for path in ("/dashboard", "/dashboard/app.js", "/stats/stream"):
            status, _, body = await _get(base_url(prx) + path, {"Host": "evil.example"})
            assert (status, b"is not allowed" in body) == (403, True), path


class _Inline(HTMLParser):
    """Collects what a strict CSP would block in a page: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self._tag = tag
        if tag == "style" or "style" in names or any(n.startswith("on") for n in names):
            self.blocked.append(f"<{tag} {sorted(names)}>")
        if tag == "script" and "src" not in names:
            self.blocked.append("inline <script>")
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.blocked.append(f"remote {name}={value}")

    def handle_data(self, data: str) -> None:
        if self._tag == "script" and data.strip():
            self.blocked.append("inline script text")


class TestStaticFiles:
    def test_the_page_has_nothing_the_csp_would_block(self) -> None:
        """index.html has no inline script, style or handler, and no remote source."""
        parser = _Inline()
        parser.feed((resources.files("proxy.dashboard") / "static" / "index.html").read_text())
        assert parser.blocked == []

    def test_the_script_writes_no_markup_and_no_inline_style(self) -> None:
        """app.js never parses text as HTML (innerHTML, outerHTML, insertAdjacentHTML,
        document.write) nor sets a style attribute: client keys are shown as text."""
        script = (resources.files("proxy.dashboard") / "static" / "app.js").read_text()
        found = re.findall(
            r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\.style\b|eval\(", script
        )
        assert found == []

    def test_the_files_ship_as_package_data(self) -> None:
        """pyproject.toml's package data covers every file the routes serve, so a
        non-editable install has them."""
        text = (ROOT / "pyproject.toml").read_text()
        globs = re.search(r"^proxy = \[(.*)\]$", text, flags=re.MULTILINE)
        assert globs is not None
        patterns = re.findall(r'"([^"]+)"', globs.group(1))
        package = ROOT / "proxy"
        shipped = {p.name for pattern in patterns for p in package.glob(pattern) if p.is_file()}
        assert set(file_names()) <= shipped
