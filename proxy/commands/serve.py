"""`lanes serve`: one flag per ProxySettings field, then run the proxy until a signal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from proxy.config import CONFIG_ENV, load_settings
from proxy.settings import ProxySettings

__all__ = ["register"]


def _client_priority(text: str) -> tuple[str, str]:
    client, sep, priority = text.rpartition("=")
    if not sep or not client:
        raise argparse.ArgumentTypeError(f"expected CLIENT=PRIORITY, got {text!r}")
    return client, priority


def _client_weight(text: str) -> tuple[str, float]:
    client, sep, weight = text.rpartition("=")
    try:
        value = float(weight)
    except ValueError:
        value = 0.0
    if not sep or not client or not value > 0:
        raise argparse.ArgumentTypeError(f"expected CLIENT=WEIGHT (a number above 0), got {text!r}")
    return client, value


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r}: {exc}") from None


def _flag_type(annotation: Any) -> Any:
    """The argparse `type` for a settings field: int, float or str (validation is pydantic's);
    str for a number that may also be a word (`--lanes auto`)."""
    if any(get_origin(arg) is Literal for arg in get_args(annotation)):
        return str
    for candidate in (annotation, *get_args(annotation)):
        if candidate in (int, float):
            return candidate
    return str


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `lanes serve` with a flag for every setting."""
    parser = subparsers.add_parser(
        "serve",
        help="run the lane proxy in front of Ollama",
        description="Run the fair-queue lane proxy. Every flag also reads from LANES_<NAME> "
        "and from the [serve] table of the config file; flags win.",
    )
    parser.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV})")
    for name, field in ProxySettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.get_default(call_default_factory=True)
        text = f"{field.description or name} (env LANES_{name.upper()}, default {default!r})"
        if name == "client_priorities":
            parser.add_argument(
                "--client-priority",
                dest=name,
                action="append",
                type=_client_priority,
                metavar="CLIENT=PRIORITY",
                help=f"priority for a client key, repeatable ({text})",
            )
        elif name == "client_weights":
            parser.add_argument(
                "--client-weight",
                dest=name,
                action="append",
                type=_client_weight,
                metavar="CLIENT=WEIGHT",
                help=f"fair-share weight for a client key, repeatable ({text})",
            )
        elif name == "allowed_origins":
            parser.add_argument(flag, metavar="ORIGIN[,ORIGIN...]", help=text)
        elif get_origin(field.annotation) in (list, dict):  # upstreams, pin: JSON
            parser.add_argument(flag, type=_json, metavar="JSON", help=text)
        elif field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=text)
        elif name == "auth_token":
            parser.add_argument(flag, help=f"{text}; prefer the env var, flags are visible in ps")
        else:
            parser.add_argument(flag, type=_flag_type(field.annotation), help=text)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name, None) for name in ProxySettings.model_fields}
    for table in ("client_priorities", "client_weights"):
        pairs = overrides.get(table)
        if pairs is not None:
            overrides[table] = dict(pairs)
    settings = load_settings(ProxySettings, overrides, config_file=args.config)
    from proxy.relay.server import serve  # imported late: `lanes --help` stays light

    return serve(settings, lambda: load_settings(ProxySettings, overrides, config_file=args.config))
