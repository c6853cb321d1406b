"""Classification (pure): a request's method, path, headers and body become one RequestFacts.

Every decision about what a request *is* lives here, once: its route kind (a lane, a model load,
a merged model list, a management call, a plain pass-through), the client key, the priority
class, the model, the host named by `X-Lanes-Upstream`, and the body to send upstream after the
`[serve.pin]` rules. Nothing here reads a socket or a clock; the prompt text is never kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from proxy.errors import BadRequest
from proxy.lanes.ring import CLASSES
from proxy.ollama import is_inference, prompt_chars
from proxy.relay import headers
from proxy.relay.merge import MERGED_PATHS
from proxy.relay.pinning import pin_document
from proxy.relay.prompt import estimate_prompt_tokens, streams
from proxy.upstream_specs import PinSpec, model_key

__all__ = [
    "MANAGEMENT_PATHS",
    "RequestFacts",
    "Route",
    "Rules",
    "classify",
    "client_key",
    "needs_body",
]

# Routes that change one host; with several hosts they need `X-Lanes-Upstream`.
MANAGEMENT_PATHS = frozenset({"/api/pull", "/api/delete", "/api/create", "/api/copy", "/api/push"})
_LOAD_FIELD = {"/api/generate": "prompt", "/api/chat": "messages"}  # empty = load or unload
_MAX_CLIENT_KEY = 128


class Route(Enum):
    """What kind of request it is, which decides its path through the proxy."""

    LANE = "lane"  # inference: waits for a lane, then relays
    LOAD = "load"  # a model load or unload (empty prompt or messages): relays, no lane
    MERGED = "merged"  # GET /api/tags, /api/ps or /v1/models over several hosts: answered here
    PASS = "pass"  # everything else: relayed at once to one host


@dataclass(frozen=True, slots=True)
class Rules:
    """What classification needs from the settings."""

    priorities: Mapping[str, str] = field(default_factory=dict)  # client key -> class
    pins: Mapping[str, PinSpec] = field(default_factory=dict)  # model key -> forced options
    hosts: Sequence[str] = ("default",)  # upstream names, in configuration order


@dataclass(slots=True)  # read-only by convention: frozen would cost 5x per request
class RequestFacts:
    """Everything the proxy decides about one request, before any lane or host is chosen."""

    route: Route
    method: str
    path: str
    client: str
    priority: str = "normal"
    model: str = ""  # as the client named it
    model_key: str = ""  # as Ollama lists it (`llama3.2` -> `llama3.2:latest`)
    options: Mapping[str, object] = field(default_factory=dict)
    upstream: str | None = None  # the host `X-Lanes-Upstream` names
    pinned: bool = False  # a pin changed the body
    prompt_chars: int = 0  # characters of prompt text (its length only; the text is not kept)
    prompt_tokens: int = 0  # estimated from those characters (queue rule 4 charges it)
    stream: bool = False  # the answer streams (NDJSON natively, SSE on /v1)


def needs_body(method: str, path: str) -> bool:
    """True for the requests whose body must be read before they can be classified: the
    inference requests, which are also the only ones that may take a lane."""
    return is_inference(method, path)


def client_key(header: str | None, user_agent: str | None, peer: str | None) -> str:
    """`X-Lanes-Client`, else the User-Agent's product token, else the peer address."""
    if header and (key := header.strip()):
        return key[:_MAX_CLIENT_KEY]
    if user_agent and (product := user_agent.strip().split("/", 1)[0].split(" ", 1)[0]):
        return product[:_MAX_CLIENT_KEY]
    return peer or "unknown"


def _priority(header: str | None, client: str, mapping: Mapping[str, str]) -> str:
    """`X-Lanes-Priority`, else the client's configured priority, else `normal`."""
    if header:
        value = header.strip().lower()
        if value not in CLASSES:
            raise BadRequest(
                f"{headers.PRIORITY} must be one of {', '.join(CLASSES)}, not {header!r}"
            )
        return value
    return mapping.get(client, "normal")


def _named_host(header: str | None, hosts: Sequence[str]) -> str | None:
    name = (header or "").strip()
    if not name:
        return None
    if name not in hosts:
        raise BadRequest(
            f"{headers.UPSTREAM}: no upstream is called {name!r}; configured: {', '.join(hosts)}"
        )
    return name


def classify(
    method: str,
    path: str,
    head: Mapping[str, str],
    peer: str | None,
    doc: dict[str, Any] | None,
    rules: Rules,
) -> RequestFacts:
    """The facts of one request; `doc` is its JSON body, read only when `needs_body` says so.

    A `[serve.pin]` rule for the model is applied to `doc` in place (`facts.pinned` says so).
    Raises BadRequest for a header the proxy cannot act on.
    """
    client = client_key(head.get(headers.CLIENT), head.get("User-Agent"), peer)
    upstream = _named_host(head.get(headers.UPSTREAM), rules.hosts)
    if doc is None or not needs_body(method, path):
        return _without_body(method, path, client, upstream, rules.hosts)
    priority = _priority(head.get(headers.PRIORITY), client, rules.priorities)
    raw_model = doc.get("model")
    model = raw_model if isinstance(raw_model, str) else ""
    key = model_key(model)
    load_field = _LOAD_FIELD.get(path)
    loads_only = load_field is not None and not doc.get(load_field) and not doc.get("images")
    spec = rules.pins.get(key)
    pinned = spec is not None and pin_document(path, doc, spec)
    options = doc.get("options")
    chars = prompt_chars(doc)
    return RequestFacts(
        route=Route.LOAD if loads_only else Route.LANE,
        method=method,
        path=path,
        client=client,
        priority=priority,
        model=model,
        model_key=key,
        options=dict(options) if isinstance(options, dict) else {},
        upstream=upstream,
        pinned=pinned,
        prompt_chars=chars,
        prompt_tokens=estimate_prompt_tokens(chars),
        stream=streams(path, doc),
    )


def _without_body(
    method: str, path: str, client: str, upstream: str | None, hosts: Sequence[str]
) -> RequestFacts:
    route = Route.PASS
    if upstream is None and len(hosts) > 1:
        if method == "GET" and path in MERGED_PATHS:
            route = Route.MERGED
        elif path in MANAGEMENT_PATHS:
            raise BadRequest(
                f"{path} changes one Ollama host and this proxy has {len(hosts)}; "
                f"name one with the header {headers.UPSTREAM}: {' | '.join(hosts)}"
            )
    return RequestFacts(route=route, method=method, path=path, client=client, upstream=upstream)
