"""`lanes demo`: the whole system on a simulated Ollama: proxy, fair queue, miner and stats."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from proxy.simulator.demo import run_demo

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add `lanes demo`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the whole system on a simulated Ollama (no GPU needed)",
        description="Start a simulated Ollama and a lane proxy on free ports, show a batch "
        "job and a person sharing 2 lanes fairly, mine a bundled sample, print lanes stats.",
    )
    parser.add_argument("--quick", action="store_true", help="skip the miner step")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo's steps; the miner's only without --quick."""
    return asyncio.run(run_demo(miner=not args.quick))
