"""A small read-only HTTP client: Ollama's `/api/version` and `/api/ps`, the proxy's `/stats`."""

from __future__ import annotations

from typing import Any

import aiohttp

from proxy.stats.schema import LoadedModel

__all__ = ["ProbeError", "fetch_stats", "get_json", "parse_ps", "upstream_facts"]


class ProbeError(Exception):
    """The server did not answer as expected; the message is one human line."""


async def get_json(
    session: aiohttp.ClientSession, url: str, *, token: str | None = None, timeout_s: float = 5.0
) -> Any:
    """GET `url` and decode its JSON body; raises ProbeError on any failure."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with session.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            if resp.status != 200:
                raise ProbeError(f"{url} answered HTTP {resp.status}")
            return await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise ProbeError(f"{url} did not answer: {type(exc).__name__} {exc}".rstrip()) from exc


def parse_ps(doc: Any) -> list[LoadedModel]:
    """The loaded models of an `/api/ps` answer; odd entries are skipped."""
    out: list[LoadedModel] = []
    entries = doc.get("models") if isinstance(doc, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        ctx, vram, expires = (
            entry.get("context_length"),
            entry.get("size_vram"),
            entry.get("expires_at"),
        )
        out.append(
            LoadedModel(
                name=entry["name"],
                context_length=ctx if isinstance(ctx, int) else None,
                size_vram_bytes=vram if isinstance(vram, int) else None,
                expires_at=expires if isinstance(expires, str) else None,
            )
        )
    return out


async def upstream_facts(
    session: aiohttp.ClientSession, base_url: str, *, timeout_s: float = 5.0
) -> tuple[str | None, list[LoadedModel]]:
    """Ollama's version and loaded models; raises ProbeError when it does not answer."""
    base = base_url.rstrip("/")
    version_doc = await get_json(session, f"{base}/api/version", timeout_s=timeout_s)
    ps_doc = await get_json(session, f"{base}/api/ps", timeout_s=timeout_s)
    version = version_doc.get("version") if isinstance(version_doc, dict) else None
    return (version if isinstance(version, str) else None), parse_ps(ps_doc)


async def fetch_stats(
    url: str,
    *,
    token: str | None = None,
    timeout_s: float = 5.0,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, Any]:
    """The proxy's `/stats` document (`url` is the proxy's base URL)."""
    target = f"{url.rstrip('/')}/stats"
    if session is None:
        async with aiohttp.ClientSession() as own:
            doc = await get_json(own, target, token=token, timeout_s=timeout_s)
    else:
        doc = await get_json(session, target, token=token, timeout_s=timeout_s)
    if not isinstance(doc, dict) or "lanes" not in doc:
        raise ProbeError(f"{target} did not return ollama-lanes statistics")
    return doc
