"""Diagnosis: pure checks over gathered facts, each giving a plain-words finding and a fix."""

from __future__ import annotations

from urllib.parse import urlsplit

from proxy.install.doctor_facts import DoctorFacts
from proxy.install.doctor_lanes import check_lane_map, check_parallel, lane_map
from proxy.install.finding import Finding
from proxy.install.kv_cache import kv_bytes_per_token
from proxy.machine.listeners import Listener

__all__ = ["Finding", "diagnose"]

HAZARD_TOKENS = 131072  # KV tokens per model above which a warning is worth it (§6.4)
_GIB = 1024**3


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _check_ollama(facts: DoctorFacts) -> Finding:
    probe = facts.ollama
    if probe.is_proxy:
        return Finding(
            "ollama",
            "fail",
            f"{probe.url} answers like the lanes proxy, not like Ollama.",
            "Point the proxy's upstream (and `lanes doctor --ollama`) at Ollama itself; "
            "after `lanes install --takeover` that is http://127.0.0.1:11436.",
        )
    if probe.version is None:
        start = (
            "open -a Ollama (or `brew services start ollama`)"
            if facts.platform == "darwin"
            else "sudo systemctl start ollama (logs: journalctl -u ollama)"
        )
        expose = (
            " In takeover mode, also turn off Ollama.app's 'Expose Ollama to the network', "
            "which makes it ignore OLLAMA_HOST and stay on port 11434."
            if facts.platform == "darwin" and _host_port(probe.url)[1] == 11436
            else ""
        )
        return Finding(
            "ollama",
            "fail",
            f"Ollama does not answer at {probe.url}: {probe.error or 'no answer'}.",
            f"Start Ollama: {start}. If it runs elsewhere, pass --ollama URL.{expose}",
        )
    return Finding("ollama", "ok", f"Ollama {probe.version} answers at {probe.url}.")


def _check_ports(facts: DoctorFacts) -> list[Finding]:
    host, port = _host_port(facts.ollama.url)
    if _host_port(facts.proxy.url) == (host, port):
        return [
            Finding(
                "port",
                "fail",
                f"The proxy and Ollama are both expected at {host}:{port}.",
                "Give them different ports: `lanes install` (proxy on 11435) or "
                "`lanes install --takeover` (Ollama on 11436).",
            )
        ]
    if not facts.listeners:
        return []
    by_port: dict[str, list[Listener]] = {}
    for item in facts.listeners:
        by_port.setdefault(item.address.rpartition(":")[2], []).append(item)
    found = []
    for where, items in sorted(by_port.items()):
        owners = {item.owner for item in items}
        if len(owners) > 1:
            who = "; ".join(f"{item.address} by {item.owner}" for item in items)
            found.append(
                Finding(
                    "port",
                    "fail",
                    f"{len(owners)} servers listen on port {where}: {who}. Which one a "
                    "client reaches depends on the address it uses.",
                    "Stop all but one: two Ollamas (the app and `brew services`), or "
                    "Ollama.app's 'Expose Ollama to the network' (which ignores OLLAMA_HOST) "
                    "next to the proxy in takeover mode.",
                )
            )
    ports = " and ".join(sorted(by_port))
    return found or [Finding("port", "ok", f"No port is claimed twice (checked {ports}).")]


def _check_brew(facts: DoctorFacts) -> list[Finding]:
    env = facts.brew_plist_env
    if env is None:
        return []
    if env:
        names = ", ".join(sorted(env))
        return [
            Finding(
                "brew",
                "fail",
                f"The brew services plist sets {names}; `brew services restart ollama` and "
                "every upgrade regenerate that file and silently drop them.",
                "Remove them from ~/Library/LaunchAgents/homebrew.mxcl.ollama.plist and run "
                "`lanes install --lanes N`, which keeps them in launchd's user environment.",
            )
        ]
    return [Finding("brew", "ok", "The brew services plist carries no settings to lose.")]


def _check_proxy(facts: DoctorFacts) -> list[Finding]:
    probe, service = facts.proxy, facts.service
    found: list[Finding] = []
    if service is not None and not service.exe_exists:
        found.append(
            Finding(
                "proxy",
                "fail",
                f"{service.path} runs {service.exe}, which does not exist any more.",
                "Run `lanes install` again from the lanes you want to keep.",
            )
        )
    if probe.lanes is None:
        fix = (
            f"Restart it: {service.restart} (logs: {service.logs})."
            if service is not None
            else "Start it with `lanes install` (as a service) or `lanes serve`."
        )
        found.append(
            Finding(
                "proxy", "fail", f"The proxy does not answer at {probe.url}: {probe.error}.", fix
            )
        )
    elif probe.version != facts.lanes_version:
        how = service.restart if service is not None else "restart `lanes serve`"
        found.append(
            Finding(
                "proxy",
                "fail",
                f"The proxy at {probe.url} runs version {probe.version}, but the installed "
                f"lanes is {facts.lanes_version}.",
                f"Restart it to run the installed version: {how}.",
            )
        )
    else:
        found.append(Finding("proxy", "ok", f"The proxy {probe.version} answers at {probe.url}."))
    return found


def _check_kv(facts: DoctorFacts) -> list[Finding]:
    if facts.ollama.version is None:
        return []
    models = facts.ollama.models
    if not models:
        return [Finding("kv_memory", "ok", "No model is loaded, so no KV cache is allocated.")]
    # the slots Ollama gives each model; a model whose /api/show did not answer may have all
    lanes = {r.model: r.ollama_lanes for r in lane_map(facts).rows if r.ollama_source != "assumed"}
    cache_type = (facts.ollama_env or {}).get("OLLAMA_KV_CACHE_TYPE")
    found = []
    for model in models:
        ctx = model.context_length
        if ctx is None:
            continue
        parallel = lanes.get(model.name, facts.parallel.value or 1)
        tokens = ctx * parallel
        shown = facts.model_facts.get(model.name)
        per_token = kv_bytes_per_token(shown.model_info if shown else {}, cache_type)
        size = f" ≈ {tokens * per_token / _GIB:.1f} GiB" if per_token else ""
        text = (
            f"{model.name}: num_ctx {ctx} × {parallel} lane(s) = {tokens} tokens of KV cache"
            f"{size} (the loaded model takes {(model.size_bytes or 0) / _GIB:.1f} GiB in all)."
        )
        if tokens >= HAZARD_TOKENS:
            fix = "Lower num_ctx (OLLAMA_CONTEXT_LENGTH) or OLLAMA_NUM_PARALLEL to save memory."
            found.append(Finding("kv_memory", "warn", text, fix))
        else:
            found.append(Finding("kv_memory", "ok", text))
    return found


def _check_speedups(facts: DoctorFacts) -> list[Finding]:
    """aiohttp's compiled parser and writer, multidict, yarl and uvloop: without them every
    request costs several times the CPU."""
    if not facts.speedups:
        return []
    missing = [s for s in facts.speedups if not s.loaded]
    if not missing:
        names = ", ".join(s.name for s in facts.speedups)
        return [Finding("speedups", "ok", f"The compiled speed-ups are loaded ({names}).")]
    names = ", ".join(f"{s.name} ({s.detail})" for s in missing)
    return [
        Finding(
            "speedups",
            "warn",
            f"Running without compiled speed-ups: {names}; each request costs more CPU.",
            "Unset AIOHTTP_NO_EXTENSIONS and MULTIDICT_NO_EXTENSIONS (and YARL_NO_EXTENSIONS, "
            "PROPCACHE_NO_EXTENSIONS, FROZENLIST_NO_EXTENSIONS), or reinstall with "
            "`pip install --force-reinstall aiohttp uvloop` to get wheels for this platform.",
        )
    ]


def diagnose(facts: DoctorFacts) -> list[Finding]:
    """Every check, in the order a person would reason about them."""
    return [
        _check_ollama(facts),
        check_parallel(facts),
        *check_lane_map(facts),
        *_check_ports(facts),
        *_check_brew(facts),
        *_check_proxy(facts),
        *_check_kv(facts),
        *_check_speedups(facts),
    ]
