"""Reads for the doctor and the installer: Ollama's state, the proxy's `/stats`, the machine.

Ollama is read through `proxy.ollama_state.OllamaReader`, the proxy through
`proxy.stats.client.fetch_stats`, and Ollama's NUM_PARALLEL through
`proxy.machine.ollama_process.read_ollama_process`: the readers the daemon and `lanes stats` use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from proxy import __version__
from proxy.install.doctor_facts import DoctorFacts, OllamaProbe, ProxyHost, ProxyProbe
from proxy.install.platform_facts import (
    brew_plist_env,
    installed_service,
    lane_settings,
    proxy_token,
)
from proxy.install.service import Target
from proxy.machine.environment import ollama_environment
from proxy.machine.listeners import port_listeners
from proxy.machine.machine import Machine
from proxy.machine.ollama_process import read_ollama_process
from proxy.machine.speedups import speedups
from proxy.ollama import ModelFacts
from proxy.ollama_state import OllamaError, OllamaReader
from proxy.stats.client import StatsUnavailable, fetch_stats

__all__ = [
    "gather_doctor_facts",
    "not_following",
    "probe_ollama",
    "probe_proxy",
    "read_installed",
    "read_model_facts",
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


async def read_installed(
    session: aiohttp.ClientSession, url: str, timeout_s: float = PROBE_TIMEOUT_S
) -> list[str]:
    """The names of the models Ollama has installed (`/api/tags`); empty when it cannot tell."""
    try:
        return [
            model.name
            for model in await OllamaReader(session, url, timeout_s=timeout_s).installed()
        ]
    except OllamaError:
        return []


async def read_model_facts(
    session: aiohttp.ClientSession,
    url: str,
    names: Iterable[str],
    timeout_s: float = PROBE_TIMEOUT_S,
) -> dict[str, ModelFacts]:
    """`/api/show` of each model, by name; a model that cannot be read is left out."""
    reader = OllamaReader(session, url, timeout_s=timeout_s)
    wanted = list(dict.fromkeys(names))

    async def show(name: str) -> ModelFacts | None:
        try:
            return await reader.show(name)
        except OllamaError:
            return None

    shown = await asyncio.gather(*(show(name) for name in wanted))
    return {name: facts for name, facts in zip(wanted, shown, strict=True) if facts is not None}


def _host(name: str, row: Any) -> ProxyHost:
    """One `/stats` upstreams row; a proxy from before the lane map lacks its keys."""
    cap, parallel = row.get("cap"), row.get("num_parallel")
    return ProxyHost(
        name=name,
        url=str(row.get("url", "")),
        cap=cap if isinstance(cap, int) else None,
        num_parallel=parallel if isinstance(parallel, int) else None,
        num_parallel_source=str(row.get("num_parallel_source", "")),
        num_parallel_detail=str(row.get("num_parallel_detail", "")),
    )


async def probe_proxy(
    session: aiohttp.ClientSession,
    url: str,
    token: str | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ProxyProbe:
    """The proxy's lanes, version and upstreams from /stats, or why it did not answer."""
    try:
        stats = await fetch_stats(url, token=token, timeout_s=timeout_s, session=session)
        lanes = int(stats["lanes"]["configured"])
        version = str(stats.get("version", "?"))
        rows = stats.get("upstreams") or {}
        hosts = tuple(_host(str(name), row) for name, row in rows.items())
    except (StatsUnavailable, KeyError, TypeError, ValueError, AttributeError) as exc:
        return ProxyProbe(url, error=short_reason(exc))
    return ProxyProbe(url, lanes=lanes, version=version, hosts=hosts)


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


async def gather_doctor_facts(
    machine: Machine, target: Target, ollama_url: str, proxy_url: str
) -> DoctorFacts:
    """Read everything `diagnose` judges; HTTP first, then the machine's own records."""
    settings = lane_settings(machine, ollama_url)
    async with aiohttp.ClientSession() as session:
        ollama, proxy = await asyncio.gather(
            probe_ollama(session, ollama_url),
            probe_proxy(session, proxy_url, proxy_token(machine)),
        )
        installed = await read_installed(session, ollama_url) if ollama.version else []
        names = [
            *(model.name for model in ollama.models),
            *installed,
            *settings.model_lanes,
        ]
        names = list(dict.fromkeys(names))
        shown = await read_model_facts(session, ollama_url, names) if ollama.version else {}
    process = await asyncio.to_thread(read_ollama_process, machine, ollama_url, ollama.version)
    ollama_side = await asyncio.to_thread(port_listeners, machine, _port(ollama_url))
    proxy_side = await asyncio.to_thread(port_listeners, machine, _port(proxy_url))
    pids = ollama_side[1] if ollama_side is not None else []
    listeners = None
    if ollama_side is not None and proxy_side is not None:
        listeners = ollama_side[0] + tuple(x for x in proxy_side[0] if x not in ollama_side[0])
    env, _ = await asyncio.to_thread(ollama_environment, machine, pids)
    return DoctorFacts(
        platform=machine.platform,
        lanes_version=__version__,
        ollama=ollama,
        proxy=proxy,
        ollama_env=env,
        parallel=process.num_parallel,
        listeners=listeners,
        brew_plist_env=brew_plist_env(machine),
        service=installed_service(machine, target),
        settings=settings,
        model_names=tuple(names),
        model_facts=shown,
        speedups=tuple(speedups()),
    )


def not_following(proxy: ProxyProbe, ollama_url: str, num_parallel: int) -> str | None:
    """Why the proxy does not (yet) follow OLLAMA_NUM_PARALLEL = `num_parallel`; None if it does."""
    host = proxy.host_for(ollama_url)
    if host is None:
        return f"the proxy at {proxy.url} does not forward to {ollama_url}"
    if host.cap is not None:
        return (
            f"the proxy at {proxy.url} has lanes = {host.cap} set by hand for {host.name}, "
            "so it does not follow OLLAMA_NUM_PARALLEL"
        )
    if (host.num_parallel, host.num_parallel_source) == (num_parallel, "ollama-env"):
        return None
    if host.num_parallel_source == "config":
        return (
            f"the proxy at {proxy.url} uses num_parallel = {host.num_parallel} from its "
            f"settings for {host.name} instead of Ollama's OLLAMA_NUM_PARALLEL: remove it there"
        )
    if host.num_parallel is None:
        return (
            f"the proxy at {proxy.url} cannot read Ollama's OLLAMA_NUM_PARALLEL "
            f"({host.num_parallel_detail}), so it gives each model 1 lane"
        )
    return (
        f"the proxy at {proxy.url} has OLLAMA_NUM_PARALLEL = {host.num_parallel} "
        f"({host.num_parallel_source}: {host.num_parallel_detail}), not {num_parallel}"
    )


async def wait_ready(
    ollama_url: str,
    proxy_url: str,
    num_parallel: int,
    timeout_s: float,
    token: str | None = None,
) -> list[str]:
    """Wait until Ollama answers and the proxy follows its OLLAMA_NUM_PARALLEL = `num_parallel`
    (read from the running Ollama: its /stats source `ollama-env`); what is still wrong at the end.
    """
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
            elif (why := not_following(proxy, ollama_url, num_parallel)) is not None:
                problems.append(why)
            if not problems or time.monotonic() >= deadline:
                return problems
            await asyncio.sleep(0.5)
