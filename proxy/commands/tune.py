"""`lanes tune`: sweep concurrency against Ollama, recommend the knee, optionally apply it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from proxy.config import CONFIG_ENV, SettingsError, config_path, load_settings
from proxy.install.kv_cache import default_num_parallel, kv_bytes_per_token
from proxy.install.tune import (
    StepResult,
    choose_knee,
    format_bytes,
    kv_memory_bytes,
    ollama_queued_from,
    render_chart,
    render_table,
    set_toml_key,
    sweep_plan,
)
from proxy.settings import ProxySettings
from proxy.status import ExitStatus

__all__ = ["register", "representative_request", "sweep"]

_NS = 1e9


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lanes tune`."""
    parser = subparsers.add_parser(
        "tune",
        help="find the lane count past which Ollama gets no faster",
        description="Hold 1, 2, 3, 4, 6, 8, ... requests at once against Ollama, measure "
        "output tokens/s, requests/s and p95 latency, and recommend the smallest lane count "
        "within 5% of the best throughput (the knee). Set OLLAMA_NUM_PARALLEL to at least "
        "--max-lanes first, or Ollama's own queue caps the sweep.",
    )
    parser.add_argument("--model", help="model to tune (default: the miner's model)")
    parser.add_argument("--max-lanes", type=int, default=16, help="largest step (default 16)")
    parser.add_argument(
        "--request", type=Path, help="JSON body of a representative /api/chat or /api/generate"
    )
    parser.add_argument("--rounds", type=int, default=2, help="requests per lane per step")
    parser.add_argument("--apply", action="store_true", help="write lanes into [serve]")
    parser.add_argument("--url", help="a running proxy's URL: tune the upstream it forwards to")
    parser.add_argument("--ollama", help="Ollama's URL (default: [serve] upstream)")
    parser.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV})")
    parser.set_defaults(func=_run)


def representative_request(model: str | None) -> dict[str, Any]:
    """The miner's request for the largest segment of the first bundled sample."""
    from miner import samples_path
    from miner.formats import discover, read_source
    from miner.prompt import build_body
    from miner.segments import Budget, segment_turns
    from miner.settings import MinerSettings

    defaults = MinerSettings(db=Path(os.devnull))
    files, _ = discover([samples_path()])
    parsed = read_source(files[0])
    budget = Budget(defaults.segment_min_tokens, defaults.segment_max_tokens)
    segments = segment_turns(str(files[0]), parsed.turns, budget, merge_turns=parsed.merge_turns)
    largest = max(segments, key=lambda s: len(s.text))
    return build_body(
        largest,
        api="ollama",
        model=model or defaults.model,
        num_ctx=defaults.num_ctx,
        num_predict=defaults.num_predict,
        keep_alive=defaults.keep_alive,
    )


async def _one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    begin = time.monotonic()
    async with session.post(url, json=body) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {url}: {text[:200]}")
    doc: dict[str, Any] = json.loads(text)
    doc["_latency_s"] = time.monotonic() - begin
    return doc


async def _step(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], lanes: int, rounds: int
) -> StepResult:
    await asyncio.gather(*(_one(session, url, body) for _ in range(lanes)))  # warm-up
    docs: list[dict[str, Any]] = []

    async def worker() -> None:
        for _ in range(rounds):
            docs.append(await _one(session, url, body))

    begin = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(lanes)))
    wall = time.monotonic() - begin
    keys = ("load_duration", "prompt_eval_duration", "eval_duration")
    return StepResult(
        lanes=lanes,
        wall_s=wall,
        output_tokens=sum(int(d.get("eval_count", 0)) for d in docs),
        latencies_s=[d["_latency_s"] for d in docs],
        slot_waits_s=[
            max(0.0, (d.get("total_duration", 0) - sum(d.get(k, 0) for k in keys)) / _NS)
            for d in docs
            if "total_duration" in d
        ],
    )


async def sweep(
    ollama: str, body: dict[str, Any], plan: list[int], rounds: int, out: TextIO
) -> list[StepResult]:
    """Measure every step of `plan` against `ollama` with `body` (non-streaming)."""
    path = "/api/chat" if "messages" in body else "/api/generate"
    body = {**body, "stream": False}
    timeout = aiohttp.ClientTimeout(total=3600)
    connector = aiohttp.TCPConnector(limit=0)
    steps = []
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        for lanes in plan:
            step = await _step(session, ollama + path, body, lanes, rounds)
            print(f"  {lanes:>3} at once: {step.tokens_per_s:.1f} tok/s", file=out, flush=True)
            steps.append(step)
    return steps


async def _upstream_of(proxy: str) -> str:
    """The upstream a running proxy forwards to, from its `/stats`."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(proxy + "/stats") as resp,
    ):
        resp.raise_for_status()
        return str((await resp.json())["upstream"]["url"]).rstrip("/")


async def _facts(ollama: str, model: str) -> tuple[str, dict[str, Any], int | None]:
    """(Ollama's version, /api/show model_info, the loaded context length)."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(ollama + "/api/version") as resp:
            version = str((await resp.json()).get("version", "?"))
        async with session.post(ollama + "/api/show", json={"model": model}) as resp:
            info = (await resp.json()).get("model_info") or {} if resp.status == 200 else {}
        async with session.get(ollama + "/api/ps") as resp:
            loaded = (await resp.json()).get("models") or []
    ctx = next((m.get("context_length") for m in loaded if m.get("name") == model), None)
    return version, info, ctx if isinstance(ctx, int) else None


def _ollama_env(ollama: str, version: str) -> tuple[dict[str, str], str]:
    """Ollama's OLLAMA_* variables (empty when unreadable) and what we could tell."""
    if version.endswith("-sim"):
        return {}, "simulated Ollama: its slots come from `lanes simulate --lanes`"
    from proxy.install.machine import Machine
    from proxy.install.platform_facts import ollama_environment, port_listeners

    machine = Machine.current()
    found = port_listeners(machine, urlsplit(ollama).port or 11434)
    env, where = ollama_environment(machine, found[1] if found else [])
    if env is None:
        return {}, f"could not read Ollama's environment ({where})"
    value = env.get("OLLAMA_NUM_PARALLEL")
    default = default_num_parallel(version)
    if not value:
        env = {**env, "OLLAMA_NUM_PARALLEL": str(default)} if default else env
        value = f"unset (so {default})" if default else "unset (chosen by Ollama)"
    return env, f"OLLAMA_NUM_PARALLEL is {value}, read from {where}"


def _advice(max_lanes: int) -> str:
    return (
        f"set OLLAMA_NUM_PARALLEL={max_lanes} for the sweep: `lanes install --lanes {max_lanes}`, "
        f'or on Linux `systemctl edit ollama.service` (Environment="OLLAMA_NUM_PARALLEL='
        f'{max_lanes}"), on macOS `launchctl setenv OLLAMA_NUM_PARALLEL {max_lanes}`; then '
        "restart Ollama"
    )


def _report(steps: list[StepResult], knee: int, max_lanes: int, out: TextIO) -> None:
    print("\n" + render_table(steps, knee) + "\n\n" + render_chart(steps) + "\n", file=out)
    queued = ollama_queued_from(steps)
    if queued is not None:
        ran = max((s.lanes for s in steps if s.lanes < queued), default=1)
        print(
            f"Requests waited inside Ollama from {queued} at once: it ran at most {ran} "
            f"together, so its slots cap the sweep; {_advice(max_lanes)}.",
            file=out,
        )
    best = max(steps, key=lambda s: s.tokens_per_s)
    print(
        f"Recommended lanes: {knee} (best {best.tokens_per_s:.1f} tok/s at {best.lanes}; "
        f"{knee} is the smallest count within 5% of it).",
        file=out,
    )


def _apply(config: Path, knee: int, out: TextIO) -> None:
    text = config.read_text(encoding="utf-8") if config.is_file() else ""
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(set_toml_key(text, "serve", "lanes", knee), encoding="utf-8")
    print(f"Wrote lanes = {knee} into [serve] of {config}.", file=out)
    print(
        "The proxy reads its settings at start and has no reload signal: restart it "
        "(`systemctl --user restart ollama-lanes.service`, or on macOS `launchctl kickstart -k "
        "gui/$UID/com.ollama-lanes.proxy`, or stop and start `lanes serve`).",
        file=out,
    )
    command = f"lanes install --lanes {knee}"
    if sys.stdin.isatty():
        answer = input(f"Set OLLAMA_NUM_PARALLEL={knee} to match now with `{command}`? [y/N] ")
        if answer.strip().lower() in {"y", "yes"}:
            from proxy.__main__ import main as lanes_main

            lanes_main(["install", "--lanes", str(knee)])
            return
    print(f"To match Ollama's slots (and free KV memory): `{command}`.", file=out)


def _run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.max_lanes < 1 or args.rounds < 1:
        raise SettingsError("--max-lanes and --rounds must be at least 1")
    config = args.config
    settings = load_settings(ProxySettings, {}, config_file=config)
    ollama = (args.ollama or settings.upstream).rstrip("/")
    if args.url and not args.ollama:
        try:
            ollama = asyncio.run(_upstream_of(args.url.rstrip("/")))
        except (aiohttp.ClientError, OSError, ValueError, KeyError) as exc:
            print(f"lanes tune: no proxy statistics at {args.url} ({exc})", file=sys.stderr)
            return ExitStatus.UNAVAILABLE
    if args.request is not None:
        body = json.loads(args.request.read_text(encoding="utf-8"))
        if args.model:
            body["model"] = args.model
    else:
        body = representative_request(args.model)
    model = str(body.get("model", ""))
    try:
        version, info, loaded_ctx = asyncio.run(_facts(ollama, model))
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        print(f"lanes tune: Ollama is not answering on {ollama} ({exc})", file=sys.stderr)
        return ExitStatus.UNAVAILABLE
    env, seen = _ollama_env(ollama, version)
    print(f"Ollama {version} at {ollama}, model {model}. {seen}.", file=out)
    value = env.get("OLLAMA_NUM_PARALLEL", "")
    if value.isdigit() and int(value) < args.max_lanes:
        print(f"Warning: Ollama runs at most {value} at once; {_advice(args.max_lanes)}.", file=out)
    plan = sweep_plan(args.max_lanes)
    print(f"Sweeping {plan}, {args.rounds} request(s) per lane per step after a warm-up:", file=out)
    try:
        steps = asyncio.run(sweep(ollama, body, plan, args.rounds, out))
    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
        print(f"lanes tune: the sweep failed: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    knee = choose_knee(steps)
    _report(steps, knee, args.max_lanes, out)
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    num_ctx = int(options.get("num_ctx") or loaded_ctx or 0)
    per_token = kv_bytes_per_token(info, env.get("OLLAMA_KV_CACHE_TYPE"))
    for n in sorted({knee, args.max_lanes}) if per_token and num_ctx else []:
        size = format_bytes(kv_memory_bytes(num_ctx, n, per_token or 0))
        print(
            f"KV cache at {n} lanes: {num_ctx} ctx × {n} × {per_token} B/token = {size}.", file=out
        )
    if not (per_token and num_ctx):
        print("KV cache size: unknown (Ollama reports no layer and head counts).", file=out)
    if args.apply:
        _apply(config or config_path(), knee, out)
    return ExitStatus.SUCCESS
