"""Ollama's rules for browsers (pure): the Host names and Origins it accepts, and its CORS headers.

Read from Ollama's `server/routes.go` (`allowedHostsMiddleware`, `allowedHost`) and
`envconfig.AllowedOrigins` with gin-contrib/cors (`AllowWildcard`, `AllowBrowserExtensions`),
v0.33 (reference `ollama-api.md` §2). The proxy applies them to every request before anything
else, so a web page can do no more through the proxy than it could with Ollama alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ALLOW_HEADERS",
    "ALLOW_METHODS",
    "EXPOSE_HEADERS",
    "OriginRule",
    "cors_headers",
    "default_origins",
    "host_allowed",
    "is_cross_origin",
    "origins_from",
    "preflight_headers",
    "split_origins",
]

# Ollama's AllowHeaders (its OpenAI compatibility headers included), and the proxy's own.
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "User-Agent",
    "Accept",
    "X-Requested-With",
    "OpenAI-Beta",
    "X-Stainless-Arch",
    "X-Stainless-Async",
    "X-Stainless-Custom-Poll-Interval",
    "X-Stainless-Helper-Method",
    "X-Stainless-Lang",
    "X-Stainless-Os",
    "X-Stainless-Package-Version",
    "X-Stainless-Poll-Helper",
    "X-Stainless-Retry-Count",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Timeout",
    "Origin",
    "Content-Length",
    "X-Lanes-Client",
    "X-Lanes-Priority",
    "X-Lanes-Upstream",
    "X-Lanes-Progress",
)
ALLOW_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"  # gin-contrib/cors DefaultConfig
MAX_AGE_S = 43200  # DefaultConfig: 12 hours
# What a page may read of the proxy's answers (Ollama exposes nothing; these are ours).
EXPOSE_HEADERS = ("X-Lanes-Queue-Ms", "X-Lanes-Client", "X-Lanes-Queue-Position", "Retry-After")

_LOCAL_TLDS = (".localhost", ".local", ".internal")
# Go's netip.Addr.IsPrivate (RFC 1918, RFC 4193): narrower than Python's is_private, which also
# counts link-local (169.254.169.254, cloud metadata) and documentation ranges.
_GO_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_ALWAYS_SCHEMES = ("app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*")


def default_origins() -> list[str]:
    """Ollama's always-allowed origins: localhost, 127.0.0.1 and 0.0.0.0 on any port, app
    schemes."""
    found = [
        f"{scheme}://{host}{port}"
        for host in ("localhost", "127.0.0.1", "0.0.0.0")
        for scheme in ("http", "https")
        for port in ("", ":*")
    ]
    return [*found, *_ALWAYS_SCHEMES]


def split_origins(value: str) -> list[str]:
    """A comma-separated OLLAMA_ORIGINS value: spaces and quotes trimmed, empties dropped."""
    return [o for part in value.split(",") if (o := part.strip().strip("\"'").strip())]


def _split_host(header: str) -> str:
    """The host of a Host header, without the port (IPv6 brackets removed), lower-case."""
    host = header.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.rpartition(":")[0]
    return host


def host_allowed(
    header: str, *, hostname: str, local_addresses: Callable[[], Iterable[str]]
) -> bool:
    """True when Ollama would accept this `Host` on a loopback bind.

    IP literals that are loopback, private, unspecified or this machine's own; `localhost`,
    the machine's hostname, names under `.localhost`, `.local` or `.internal`; an empty host.
    `local_addresses` is called only for a public IP literal (the rare, dearer case).
    """
    host = _split_host(header)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # Go's netip unmaps ::ffff:a.b.c.d before every check
        if ip.is_loopback or ip.is_unspecified or any(ip in net for net in _GO_PRIVATE):
            return True
        return str(ip) in {a.lower().partition("%")[0] for a in local_addresses()}
    if host in ("", "localhost") or host == hostname.lower():
        return True
    return host.endswith(_LOCAL_TLDS)


@dataclass(frozen=True, slots=True)
class OriginRule:
    """The allowed origins: exact ones, and patterns with one `*` (gin's AllowWildcard)."""

    allow_all: bool
    exact: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, origins: Iterable[str]) -> OriginRule:
        """The rule for `origins`; a bare `*` allows every origin."""
        listed = [o.lower() for o in origins]
        wild = [o for o in listed if "*" in o and o != "*"]
        return cls(
            allow_all="*" in listed,
            exact=frozenset(o for o in listed if "*" not in o),
            patterns=tuple(
                re.compile(".*".join(re.escape(part) for part in o.split("*"))) for o in wild
            ),
        )

    def allows(self, origin: str) -> bool:
        """True when a request from `origin` may go on."""
        if self.allow_all:
            return True
        value = origin.lower()
        return value in self.exact or any(p.fullmatch(value) for p in self.patterns)


def is_cross_origin(origin: str, host: str) -> bool:
    """False for the `Origin` a browser sends to its own host (gin treats it as no CORS)."""
    return origin not in (f"http://{host}", f"https://{host}")


def cors_headers(origin: str, rule: OriginRule) -> dict[str, str]:
    """The CORS headers of an answer to an allowed cross-origin request."""
    if rule.allow_all:
        return {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Expose-Headers": ",".join(EXPOSE_HEADERS),
        }
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": ",".join(EXPOSE_HEADERS),
        "Vary": "Origin",
    }


def preflight_headers(origin: str, rule: OriginRule) -> dict[str, str]:
    """The headers of the 204 answer to an allowed CORS preflight (`OPTIONS`)."""
    found = {
        "Access-Control-Allow-Origin": "*" if rule.allow_all else origin,
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": ",".join(ALLOW_HEADERS),
        "Access-Control-Max-Age": str(MAX_AGE_S),
    }
    if not rule.allow_all:
        found["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    return found


def origins_from(env: Mapping[str, str], configured: Iterable[str]) -> OriginRule:
    """Ollama's defaults, plus `OLLAMA_ORIGINS` from `env`, plus the `allowed_origins` setting."""
    from_env = split_origins(env.get("OLLAMA_ORIGINS", ""))
    return OriginRule.of([*default_origins(), *from_env, *configured])
