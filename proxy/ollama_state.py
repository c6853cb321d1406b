"""The one reader of Ollama's state: `/api/version`, `/api/ps`, `/api/tags` and `/api/show`.

The daemon's background poll (health, placement, statistics), `lanes doctor`, `lanes tune` and
the installer's readiness wait all read Ollama through `OllamaReader`; nothing else parses these
answers. Reads never follow redirects and always have a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from proxy.ollama import InstalledModel, LoadedModel, ModelFacts, parse_ps, parse_show, parse_tags

__all__ = ["OllamaError", "OllamaReader", "OllamaState", "get_json"]

DEFAULT_TIMEOUT_S = 5.0
_T = TypeVar("_T")


class OllamaError(Exception):
    """Ollama (or whatever answers at its URL) did not answer as expected; one human line."""


@dataclass(frozen=True, slots=True)
class OllamaState:
    """One look at a host: reachable or not, its version, loaded and installed models.

    `loaded` and `installed` are None when that read failed (the other parts still count).
    """

    url: str
    reachable: bool
    version: str | None = None
    loaded: tuple[LoadedModel, ...] | None = None
    installed: tuple[InstalledModel, ...] | None = None
    error: str | None = None


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    body: Any = None,
) -> Any:
    """GET (or POST `body` as JSON) `url` and decode its JSON answer; OllamaError on failure."""
    try:
        async with session.request(
            "GET" if body is None else "POST",
            url,
            json=body,
            headers=dict(headers or {}),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if resp.status != 200:
                raise OllamaError(f"{url} answered HTTP {resp.status}")
            return await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise OllamaError(f"{url} did not answer: {type(exc).__name__} {exc}".rstrip()) from exc


class OllamaReader:
    """Reads one Ollama host at `base_url`, sending `auth` as its Authorization header."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        auth: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url = base_url.rstrip("/")
        self._session = session
        self._headers = {"Authorization": auth} if auth else {}
        self._timeout_s = timeout_s

    async def _get(self, path: str, body: Any = None) -> Any:
        return await get_json(
            self._session,
            self.url + path,
            headers=self._headers,
            timeout_s=self._timeout_s,
            body=body,
        )

    async def version(self) -> str:
        """Ollama's version string."""
        doc = await self._get("/api/version")
        version = doc.get("version") if isinstance(doc, dict) else None
        if not isinstance(version, str):
            raise OllamaError(f"{self.url}/api/version did not name a version")
        return version

    async def loaded(self) -> list[LoadedModel]:
        """The models loaded now (`/api/ps`)."""
        return parse_ps(await self._get("/api/ps"))

    async def installed(self) -> list[InstalledModel]:
        """The models installed (`/api/tags`)."""
        return parse_tags(await self._get("/api/tags"))

    async def show(self, model: str) -> ModelFacts:
        """Capabilities and architecture of one model (`/api/show`)."""
        return parse_show(model, await self._get("/api/show", {"model": model}))

    async def is_lanes_proxy(self) -> bool:
        """True when the URL answers `/stats` like ollama-lanes does (a proxy, not Ollama)."""
        try:
            doc = await self._get("/stats")
        except OllamaError:
            return False
        return isinstance(doc, dict) and "lanes" in doc

    async def state(self) -> OllamaState:
        """Version, then loaded and installed models together; never raises."""
        try:
            version = await self.version()
        except OllamaError as exc:
            return OllamaState(self.url, reachable=False, error=str(exc))
        loaded, installed = await asyncio.gather(
            self._maybe(self.loaded()), self._maybe(self.installed())
        )
        return OllamaState(
            self.url,
            reachable=True,
            version=version,
            loaded=None if loaded is None else tuple(loaded),
            installed=None if installed is None else tuple(installed),
        )

    @staticmethod
    async def _maybe(read: Awaitable[_T]) -> _T | None:
        try:
            return await read
        except OllamaError:
            return None
