"""`lanes top`: a live view of the proxy's lanes, queue, tokens/s and warnings."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from proxy.config import CONFIG_ENV
from proxy.settings import proxy_endpoint
from proxy.status import ExitStatus

__all__ = ["register"]

HELP = "live view of lanes, queue, tokens/s and warnings (q quits)"


def _run(args: argparse.Namespace) -> ExitStatus:
    from proxy.stats.top import run_top  # imported late: `lanes --help` stays light

    url, token = proxy_endpoint(args.url, args.config)
    asyncio.run(run_top(url, token=token))
    return ExitStatus.SUCCESS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lanes top`."""
    parser = subparsers.add_parser("top", help=HELP, description=HELP)
    parser.add_argument("--url", help="the proxy's base URL (default: from [serve] listen)")
    parser.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV})")
    parser.set_defaults(func=_run)
