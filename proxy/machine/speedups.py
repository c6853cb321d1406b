"""The compiled speed-ups the request path relies on, and whether this interpreter has them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["Speedup", "speedups"]

# (what it speeds up, module, attribute, the compiled module it comes from when compiled)
_CHECKS = (
    ("aiohttp parser (llhttp)", "aiohttp.http_parser", "HttpRequestParser", "aiohttp._http_parser"),
    ("aiohttp header writer", "aiohttp.http_writer", "_serialize_headers", "aiohttp._http_writer"),
    ("multidict", "multidict", "CIMultiDict", "multidict._multidict"),
    ("yarl quoting", "yarl._quoting", "_Quoter", "yarl._quoting_c"),
    ("propcache", "propcache.api", "under_cached_property", "propcache._helpers_c"),
    ("frozenlist", "frozenlist", "FrozenList", "frozenlist._frozenlist"),
)


@dataclass(frozen=True, slots=True)
class Speedup:
    """One compiled extension: its name, and whether this interpreter loaded it."""

    name: str
    loaded: bool
    detail: str  # the module the code came from, or why it could not be read


def _module_of(module: str, attribute: str) -> str:
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        return f"unreadable: {exc}"
    return str(getattr(found, "__module__", "") or "")


def speedups() -> list[Speedup]:
    """Each compiled extension aiohttp's request path uses, and uvloop as the event loop."""
    found = []
    for name, module, attribute, compiled in _CHECKS:
        origin = _module_of(module, attribute)
        found.append(Speedup(name, origin == compiled, origin))
    try:
        import uvloop
    except ImportError as exc:
        found.append(Speedup("uvloop", False, f"unreadable: {exc}"))
    else:
        version = getattr(uvloop, "__version__", "?")
        found.append(Speedup("uvloop", True, f"uvloop {version}"))
    return found
