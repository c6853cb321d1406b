"""HTTP reads for the doctor and the installer: Ollama's version and models, the proxy's /stats."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from proxy import __version__
from proxy.install.doctor_facts import DoctorFacts, LoadedModel, OllamaProbe, ProxyProbe
from proxy.install.machine import Machine
from proxy.install.platform_facts import (
    brew_plist_env,
    installed_service,
    ollama_environment,
    port_listeners,
    proxy_token,
)
from proxy.install.service import Target

__all__ = ["gather_doctor_facts", "probe_ollama", "probe_proxy", "wait_ready"]

PROBE_TIMEOUT_S = 5.0


async def _get_json(session: aiohttp.ClientSession, url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, headers=headers) as response:
        response.raise_for_status()
        return await response.json(content_type=None)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    return str(exc) or type(exc).__name__


async def _is_proxy(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        stats = await _get_json(session, f"{url}/stats")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return isinstance(stats, dict) and "lanes" in stats


async def _model_info(session: aiohttp.ClientSession, url: str, name: str) -> dict[str, object]:
    try:
        async with session.post(f"{url}/api/show", json={"model": name}) as response:
            response.raise_for_status()
            shown = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {}
    info = shown.get("model_info") if isinstance(shown, dict) else None
    return dict(info) if isinstance(info, dict) else {}


async def probe_ollama(session: aiohttp.ClientSession, url: str) -> OllamaProbe:
    """Ollama's version and loaded models, or why it did not answer."""
    if await _is_proxy(session, url):
        return OllamaProbe(url, is_proxy=True)
    try:
        version = (await _get_json(session, f"{url}/api/version"))["version"]
        listed = (await _get_json(session, f"{url}/api/ps")).get("models") or []
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, AttributeError) as exc:
        return OllamaProbe(url, error=_why(exc))
    models = []
    for entry in listed:
        name = str(entry.get("name") or entry.get("model") or "?")
        ctx = entry.get("context_length")
        models.append(
            LoadedModel(
                name=name,
                context_length=ctx if isinstance(ctx, int) else None,
                size=int(entry.get("size") or 0),
                model_info=await _model_info(session, url, name),
            )
        )
    return OllamaProbe(url, version=str(version), models=tuple(models))


async def probe_proxy(
    session: aiohttp.ClientSession, url: str, token: str | None = None
) -> ProxyProbe:
    """The proxy's configured lanes and version from /stats, or why it did not answer."""
    try:
        stats = await _get_json(session, f"{url}/stats", token)
        lanes = int(stats["lanes"]["configured"])
        version = str(stats.get("version", "?"))
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        return ProxyProbe(url, error=_why(exc))
    return ProxyProbe(url, lanes=lanes, version=version)


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _session(timeout_s: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))


async def gather_doctor_facts(
    machine: Machine, target: Target, ollama_url: str, proxy_url: str
) -> DoctorFacts:
    """Read everything `diagnose` judges; HTTP first, then the machine's own records."""
    async with _session(PROBE_TIMEOUT_S) as session:
        ollama, proxy = await asyncio.gather(
            probe_ollama(session, ollama_url),
            probe_proxy(session, proxy_url, proxy_token(machine)),
        )
    ollama_side = await asyncio.to_thread(port_listeners, machine, _port(ollama_url))
    proxy_side = await asyncio.to_thread(port_listeners, machine, _port(proxy_url))
    pids = ollama_side[1] if ollama_side is not None else []
    listeners = None
    if ollama_side is not None and proxy_side is not None:
        listeners = ollama_side[0] + tuple(x for x in proxy_side[0] if x not in ollama_side[0])
    env, source = await asyncio.to_thread(ollama_environment, machine, pids)
    return DoctorFacts(
        platform=machine.platform,
        lanes_version=__version__,
        ollama=ollama,
        proxy=proxy,
        ollama_env=env,
        env_source=source,
        listeners=listeners,
        brew_plist_env=brew_plist_env(machine),
        service=installed_service(machine, target),
    )


async def wait_ready(
    ollama_url: str, proxy_url: str, lanes: int, timeout_s: float, token: str | None = None
) -> list[str]:
    """Wait until Ollama answers and the proxy reports `lanes`; what is still wrong at the end."""
    deadline = time.monotonic() + timeout_s
    async with _session(min(PROBE_TIMEOUT_S, max(timeout_s, 0.1))) as session:
        while True:
            ollama, proxy = await asyncio.gather(
                probe_ollama(session, ollama_url), probe_proxy(session, proxy_url, token)
            )
            problems = []
            if ollama.version is None:
                problems.append(f"Ollama does not answer at {ollama_url} ({ollama.error})")
            if proxy.lanes is None:
                problems.append(f"the proxy does not answer at {proxy_url} ({proxy.error})")
            elif proxy.lanes != lanes:
                problems.append(f"the proxy at {proxy_url} has {proxy.lanes} lanes, not {lanes}")
            if not problems or time.monotonic() >= deadline:
                return problems
            await asyncio.sleep(0.5)
