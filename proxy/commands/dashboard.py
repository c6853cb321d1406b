"""`lanes dashboard`: the live web dashboard's URL, printed or opened in the browser."""

from __future__ import annotations

import argparse
import sys
import webbrowser
from pathlib import Path

from proxy.config import CONFIG_ENV
from proxy.settings import proxy_endpoint
from proxy.status import ExitStatus

__all__ = ["register"]

HELP = "print the live web dashboard's URL (--open: open it in the browser)"


def _run(args: argparse.Namespace) -> ExitStatus:
    base, token = proxy_endpoint(args.url, args.config)
    url = base.rstrip("/") + "/dashboard"
    print(url)
    if token:
        print("the page asks once for the proxy's auth_token", file=sys.stderr)
    if args.open and not webbrowser.open(url):
        print(f"lanes: no browser could be opened; open {url} yourself", file=sys.stderr)
        return ExitStatus.ERROR
    return ExitStatus.SUCCESS


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lanes dashboard`."""
    parser = subparsers.add_parser("dashboard", help=HELP, description=HELP)
    parser.add_argument("--open", action="store_true", help="open the URL in the web browser")
    parser.add_argument("--url", help="the proxy's base URL (default: from [serve] listen)")
    parser.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV})")
    parser.set_defaults(func=_run)
