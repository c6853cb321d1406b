"""`lanes stats`: one read of the proxy's `/stats`, printed as tables or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from proxy.config import CONFIG_ENV
from proxy.settings import proxy_endpoint
from proxy.stats.tables import print_stats
from proxy.status import ExitStatus

__all__ = ["register"]

HELP = "print the proxy's /stats once, as tables or JSON"


def _run(args: argparse.Namespace) -> ExitStatus:
    url, token = proxy_endpoint(args.url, args.config)
    return print_stats(url, Console(), token=token, as_json=args.json)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lanes stats`."""
    parser = subparsers.add_parser("stats", help=HELP, description=HELP)
    parser.add_argument("--url", help="the proxy's base URL (default: from [serve] listen)")
    parser.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV})")
    parser.add_argument("--json", action="store_true", help="print the raw JSON")
    parser.set_defaults(func=_run)
