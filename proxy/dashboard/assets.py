"""The page's static files, shipped inside the package, and the headers every dashboard answer
carries (a strict Content-Security-Policy: no inline script or style, no remote source)."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["CSP", "DATA_HEADERS", "FILES", "PAGE_HEADERS", "asset", "file_names"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SAFE = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_HEADERS = {**_SAFE, "Cache-Control": "no-cache"}  # static: revalidated on every load
DATA_HEADERS = {**_SAFE, "Cache-Control": "no-store"}  # data: never stored

# Route -> (file in static/, Content-Type).
FILES: dict[str, tuple[str, str]] = {
    "/dashboard": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/dashboard/style.css": ("style.css", "text/css; charset=utf-8"),
    "/dashboard/icon.svg": ("icon.svg", "image/svg+xml"),
}


def file_names() -> list[str]:
    """Every file the routes serve, once each."""
    return sorted({name for name, _ in FILES.values()})


@functools.cache
def asset(name: str) -> bytes:
    """The bytes of `static/<name>`, read once through importlib.resources."""
    return (resources.files("proxy.dashboard") / "static" / name).read_bytes()
