"""`lanes tune`: sweep concurrency against Ollama, recommend the knee, optionally apply it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from proxy.config import CONFIG_ENV, SettingsError, config_path, load_settings
from proxy.install.checkup import short_reason
from proxy.install.config_edit import read_config, set_value, write_config
from proxy.install.kv_cache import kv_bytes_per_token
from proxy.install.platform_facts import config_table
from proxy.install.running_proxy import reload_proxy
from proxy.install.tune import (
    choose_knee,
    kv_report,
    parallel_advice,
    render_report,
    sweep_plan,
)
from proxy.install.tune_sweep import (
    ollama_env,
    read_ollama_facts,
    representative_request,
    sweep,
    upstream_of,
)
from proxy.machine.machine import Machine
from proxy.ollama_state import OllamaError
from proxy.settings import ProxySettings, proxy_endpoint
from proxy.stats.client import StatsUnavailable
from proxy.status import ExitStatus

__all__ = ["register"]


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
    parser.add_argument(
        "--apply",
        action="store_true",
        help='record the knee as [serve] tune_knee; with lanes = "auto" (the default) print '
        "the command that sets Ollama's NUM_PARALLEL to it; with lanes set by hand write it "
        "there too; the running proxy reads it at once (SIGHUP)",
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write only tune_knee into [serve], for the proxy's verdict; lanes stay as they are",
    )
    parser.add_argument("--url", help="a running proxy's URL: tune the upstream it forwards to")
    parser.add_argument("--ollama", help="Ollama's URL (default: [serve] upstream)")
    parser.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV})")
    parser.set_defaults(func=_run)


def _offer_install(knee: int, out: TextIO) -> None:
    """Offer (on a terminal) or print `lanes install --lanes <knee>` for Ollama's NUM_PARALLEL."""
    command = f"lanes install --lanes {knee}"
    if sys.stdin.isatty():
        answer = input(f"Set OLLAMA_NUM_PARALLEL={knee} now with `{command}`? [y/N] ")
        if answer.strip().lower() in {"y", "yes"}:
            from proxy.__main__ import main as lanes_main

            lanes_main(["install", "--lanes", str(knee)])
            return
    print(f"To match Ollama's slots (and free KV memory): `{command}`.", file=out)


def _reloaded(what: str, proxy_url: str, out: TextIO) -> None:
    """Make the running proxy read `what` just written: SIGHUP, when it is ours."""
    done = reload_proxy(Machine.current(), proxy_url)
    if done.pids:
        pids = ", ".join(str(pid) for pid in done.pids)
        print(
            f"Sent SIGHUP to the proxy at {proxy_url} (pid {pids}): it reads its config file "
            f"again and applies {what} at once; queued and running requests stay.",
            file=out,
        )
    elif not done.listening:
        print(f"No proxy runs at {proxy_url}: the next start picks up {what}.", file=out)
    else:
        print(
            f"The proxy at {proxy_url} was not signalled ({done.why_not}): it picks up "
            f"{what} on SIGHUP (`kill -HUP <pid>`) or at its next start.",
            file=out,
        )


def _record(args: argparse.Namespace, knee: int, out: TextIO) -> None:
    """Write the knee as `[serve] tune_knee`: the proxy's verdict compares its lanes with it."""
    config = args.config or config_path()
    write_config(config, set_value(read_config(config) or "", "tune_knee", knee))
    print(
        f"Wrote tune_knee = {knee} into [serve] of {config}: the proxy's verdict now knows "
        "that more than this many at once gives nothing.",
        file=out,
    )
    _reloaded(f"tune_knee = {knee}", proxy_endpoint(args.url, args.config)[0].rstrip("/"), out)


def _apply(args: argparse.Namespace, knee: int, out: TextIO) -> None:
    """Record the knee; with `lanes = "auto"` the knee is for Ollama, with lanes set by hand it
    is written there too; then the running proxy reloads."""
    config = args.config or config_path()
    lanes = config_table(config).get("lanes", "auto")
    text = set_value(read_config(config) or "", "tune_knee", knee)
    if lanes == "auto":
        write_config(config, text)
        print(
            f'The proxy\'s lanes are "auto" in {config}: it gives each model the lanes Ollama '
            f"runs it with, so {knee} is a value for Ollama's OLLAMA_NUM_PARALLEL. Only "
            f"tune_knee = {knee} was written, for the verdict.",
            file=out,
        )
        what = f"tune_knee = {knee}"
    else:
        write_config(config, set_value(text, "lanes", knee))
        print(
            f"Wrote lanes = {knee} and tune_knee = {knee} into [serve] of {config} "
            f"(lanes was {lanes}).",
            file=out,
        )
        what = f"lanes = {knee}"
    _reloaded(what, proxy_endpoint(args.url, args.config)[0].rstrip("/"), out)
    _offer_install(knee, out)


def _ollama_url(args: argparse.Namespace) -> str | None:
    """--ollama, else the upstream of the proxy at --url, else [serve] upstream; None: no proxy."""
    settings = load_settings(ProxySettings, {}, config_file=args.config)
    if args.ollama or not args.url:
        return str(args.ollama or settings.upstream).rstrip("/")
    try:
        return asyncio.run(upstream_of(args.url.rstrip("/"), settings.token))
    except (StatsUnavailable, KeyError, TypeError) as exc:
        why = short_reason(exc)
        print(f"lanes tune: no proxy statistics at {args.url} ({why})", file=sys.stderr)
        return None


def _request_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.request is None:
        return representative_request(args.model)
    body: dict[str, Any] = json.loads(args.request.read_text(encoding="utf-8"))
    if args.model:
        body["model"] = args.model
    return body


def _run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if args.max_lanes < 1 or args.rounds < 1:
        raise SettingsError("--max-lanes and --rounds must be at least 1")
    ollama = _ollama_url(args)
    if ollama is None:
        return ExitStatus.UNAVAILABLE
    body = _request_body(args)
    model = str(body.get("model", ""))
    try:
        facts = asyncio.run(read_ollama_facts(ollama, model))
    except OllamaError as exc:
        print(
            f"lanes tune: Ollama is not answering on {ollama} ({short_reason(exc)})",
            file=sys.stderr,
        )
        return ExitStatus.UNAVAILABLE
    env, seen = ollama_env(ollama, facts.version, Machine.current())
    print(f"Ollama {facts.version} at {ollama}, model {model}. {seen}.", file=out)
    value = env.get("OLLAMA_NUM_PARALLEL", "")
    if value.isdigit() and int(value) < args.max_lanes:
        advice = parallel_advice(args.max_lanes)
        print(f"Warning: Ollama runs at most {value} at once; {advice}.", file=out)
    plan = sweep_plan(args.max_lanes)
    print(f"Sweeping {plan}, {args.rounds} request(s) per lane per step after a warm-up:", file=out)
    try:
        steps = asyncio.run(sweep(ollama, body, plan, args.rounds, out))
    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
        print(f"lanes tune: the sweep failed: {exc}", file=sys.stderr)
        return ExitStatus.ERROR
    knee = choose_knee(steps)
    print(render_report(steps, knee, args.max_lanes), file=out)
    given = body.get("options")
    options = given if isinstance(given, dict) else {}
    num_ctx = int(options.get("num_ctx") or facts.loaded_context or 0)
    per_token = kv_bytes_per_token(facts.model_info, env.get("OLLAMA_KV_CACHE_TYPE"))
    for line in kv_report(num_ctx, per_token, (knee, args.max_lanes)):
        print(line, file=out)
    if args.apply:
        _apply(args, knee, out)
    elif args.record:
        _record(args, knee, out)
    return ExitStatus.SUCCESS
