"""`lanes simulate`: run the simulated Ollama."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from proxy.config import CONFIG_ENV, load_settings
from proxy.simulator.environment import reexec_with_lanes
from proxy.simulator.server import serve
from proxy.simulator.settings import SimulatorSettings
from proxy.status import ExitStatus

__all__ = ["register", "run"]

# (flag, type, help); each maps to the SimulatorSettings field of the same name.
_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("--listen", str, "address to bind, HOST:PORT (default 127.0.0.1:11434)"),
    ("--lanes", int, "slots per model, NUM_PARALLEL (default OLLAMA_NUM_PARALLEL or 1)"),
    ("--load-seconds", float, "seconds a model takes to load (default 2)"),
    ("--prefill-tps", float, "prompt tokens evaluated per second (default 2000)"),
    ("--decode-tps", float, "tokens generated per second by one request (default 40)"),
    ("--batch-alpha", float, "k requests decode at decode_tps * k**alpha in total (0.7)"),
    ("--max-queue", int, "scheduler-queue bound (default OLLAMA_MAX_QUEUE or 512)"),
    ("--max-loaded-models", int, "models loaded at once (default 3)"),
    ("--keep-alive-s", float, "idle seconds before unload, negative = never (default 300)"),
    ("--default-num-ctx", int, "context for requests without num_ctx (default 4096)"),
    ("--seed", int, "seed for replies, lengths and fault dice (default 0)"),
    ("--ollama-version", str, "version reported by /api/version (default 0.33.0-sim)"),
)
_FAULT_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("--fault-error-rate", float, "share of requests that fail (0-1)"),
    ("--fault-error-after-chunks", int, "0: fail with a 500; N: streams fail after N chunks"),
    ("--fault-busy-rate", float, "share of requests answered 503 busy"),
    ("--fault-hang-s", float, "hang this long before the first byte, holding the slot"),
    ("--fault-hang-rate", float, "share of requests that hang (default 1)"),
    ("--fault-drop-after-chunks", int, "close the connection after N chunks"),
    ("--fault-drop-rate", float, "share of requests dropped (default 1)"),
    ("--fault-malformed-rate", float, "share with a malformed line or broken JSON content"),
    ("--fault-slow-first-token-s", float, "extra delay before the first token"),
)


_RENAMED = {"--ollama-version": "version"}


def _dest(flag: str) -> str:
    return "sim_" + _RENAMED.get(flag, flag.removeprefix("--").replace("-", "_"))


def _metavar(kind: type) -> str:
    return {int: "N", float: "X"}.get(kind, "TEXT")


def register(subparsers: Any) -> None:
    """Add `lanes simulate`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "simulate",
        help="run a simulated Ollama (no GPU needed)",
        description="Serve Ollama's HTTP API with a simulated scheduler, timing and faults.",
    )
    for flag, kind, text in _FLAGS:
        parser.add_argument(flag, type=kind, dest=_dest(flag), metavar=_metavar(kind), help=text)
    parser.add_argument(
        "--model",
        action="append",
        dest="sim_models",
        metavar="NAME[:k=v,...]",
        help="serve this model instead of the defaults (repeatable); keys: ctx, size, "
        "lanes, embed, vision, dim, family, arch, error_rate, error_after, busy_rate, hang_s, "
        "hang_rate, drop_after, drop_rate, malformed_rate, slow_first_token_s",
    )
    parser.add_argument(
        "--config", type=Path, help=f"TOML config file, [simulate] table (default: ${CONFIG_ENV})"
    )
    faults = parser.add_argument_group("fault injection (run-wide; --model keys override)")
    for flag, kind, text in _FAULT_FLAGS:
        faults.add_argument(flag, type=kind, dest=_dest(flag), metavar=_metavar(kind), help=text)
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> SimulatorSettings:
    """Flags over env over the config file over defaults."""
    overrides = {
        key.removeprefix("sim_"): value
        for key, value in vars(args).items()
        if key.startswith("sim_") and value is not None
    }
    return load_settings(SimulatorSettings, overrides, args.config)


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM, with OLLAMA_NUM_PARALLEL = lanes in the process's
    environment (re-executing itself once to put it there, like Ollama's)."""
    settings = settings_from_args(args)
    reexec_with_lanes(settings.lanes, settings.version)

    def ready(url: str) -> None:
        models = ", ".join(m.name for m in settings.models)
        print(
            f"simulated Ollama {settings.version} on {url} "
            f"(lanes {settings.lanes}, models: {models}); Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )

    asyncio.run(serve(settings, on_ready=ready))
    return ExitStatus.SUCCESS
