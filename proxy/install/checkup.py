"""HTTP reads for the doctor and the installer: Ollama's state and the proxy's `/stats`.

Ollama is read through `proxy.ollama_state.OllamaReader` and the proxy through
`proxy.stats.client.fetch_stats`, the readers the daemon and `lanes stats` use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

import aiohttp

from proxy import __version__
from proxy.install.doctor_facts import DoctorFacts, OllamaProbe, ProxyProbe
from proxy.install.platform_facts import brew_plist_env, installed_service, proxy_token
from proxy.install.service import Target
from proxy.machine.environment import ollama_environment
from proxy.machine.listeners import port_listeners
from proxy.machine.machine import Machine
from proxy.ollama_state import OllamaError, OllamaReader
from proxy.stats.client import StatsUnavailable, fetch_stats

__all__ = [
    "gather_doctor_facts",
    "probe_ollama",
    "probe_proxy",
    "read_model_info",
    "short_reason",
    "wait_ready",
]

PROBE_TIMEOUT_S = 5.0
_WRAPPERS = (OllamaError, StatsUnavailable)
_STATUS = " answered HTTP "  # how the shared readers word an answer with a bad status


def short_reason(exc: BaseException) -> str:
    """Why a read failed, in a few words: "timed out", "HTTP 401", or the client error's own.

    The shared readers wrap what went wrong (naming the URL); the doctor's findings already
    name the URL, so they show only the cause.
    """
    while isinstance(exc, _WRAPPERS):
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, _WRAPPERS) and _STATUS in str(exc):
        return "HTTP " + str(exc).rpartition(_STATUS)[2]
    return str(exc) or type(exc).__name__


async def probe_ollama(
    session: aiohttp.ClientSession, url: str, timeout_s: float = PROBE_TIMEOUT_S
) -> OllamaProbe:
    """Ollama's version and loaded models, or why it did not answer."""
    reader = OllamaReader(session, url, timeout_s=timeout_s)
    if await reader.is_lanes_proxy():
        return OllamaProbe(url, is_proxy=True)
    try:
        version = await reader.version()
        loaded = await reader.loaded()
    except OllamaError as exc:
        return OllamaProbe(url, error=short_reason(exc))
    return OllamaProbe(url, version=version, models=tuple(loaded))


async def read_model_info(
    session: aiohttp.ClientSession,
    url: str,
    names: Iterable[str],
    timeout_s: float = PROBE_TIMEOUT_S,
) -> dict[str, Mapping[str, object]]:
    """`/api/show` model_info of each model, by name; a model that cannot be read is left out."""
    reader = OllamaReader(session, url, timeout_s=timeout_s)
    found: dict[str, Mapping[str, object]] = {}
    for name in names:
        try:
            found[name] = (await reader.show(name)).model_info
        except OllamaError:
            continue
    return found


async def probe_proxy(
    session: aiohttp.ClientSession,
    url: str,
    token: str | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ProxyProbe:
    """The proxy's configured lanes and version from /stats, or why it did not answer."""
    try:
        stats = await fetch_stats(url, token=token, timeout_s=timeout_s, session=session)
        lanes = int(stats["lanes"]["configured"])
        version = str(stats.get("version", "?"))
    except (StatsUnavailable, KeyError, TypeError, ValueError) as exc:
        return ProxyProbe(url, error=short_reason(exc))
    return ProxyProbe(url, lanes=lanes, version=version)


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


async def gather_doctor_facts(
    machine: Machine, target: Target, ollama_url: str, proxy_url: str
) -> DoctorFacts:
    """Read everything `diagnose` judges; HTTP first, then the machine's own records."""
    async with aiohttp.ClientSession() as session:
        ollama, proxy = await asyncio.gather(
            probe_ollama(session, ollama_url),
            probe_proxy(session, proxy_url, proxy_token(machine)),
        )
        names = [model.name for model in ollama.models]
        model_info = await read_model_info(session, ollama_url, names)
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
        model_info=model_info,
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
    each_s = min(PROBE_TIMEOUT_S, max(timeout_s, 0.1))
    async with aiohttp.ClientSession() as session:
        while True:
            ollama, proxy = await asyncio.gather(
                probe_ollama(session, ollama_url, each_s),
                probe_proxy(session, proxy_url, token, each_s),
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
