"""The checks every request passes first: Ollama's Host and Origin rules, then the token."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping

from aiohttp import web

from proxy import browsers, errors
from proxy.machine.addresses import hostname, local_addresses
from proxy.settings import ProxySettings, is_loopback_host, split_listen

__all__ = ["Guard"]

_KNOWN_HOSTS = 256  # Host values remembered as allowed (each request checks its own)


class Guard:
    """Ollama's browser rules (reference §2) and the bearer token, in that order.

    - Host: while the proxy listens on loopback, a `Host` Ollama would refuse gets 403 (the
      DNS-rebinding defence Ollama has, which a proxy that rewrites Host would otherwise drop).
      A non-loopback listen needs a token and skips the check, as Ollama does.
    - Origin: a cross-origin request from an origin outside Ollama's defaults, OLLAMA_ORIGINS
      and `allowed_origins` gets 403; an allowed one gets Ollama's CORS headers.
    - Target: only origin-form request targets (`/path?query`); absolute-form
      (`http://host/path`) and authority-form (`host:port`) get 400.
    - Token: when one is configured, `Authorization: Bearer <token>` (scheme in any case);
      CORS preflights need none, because browsers never send credentials on them.
    """

    def __init__(
        self,
        *,
        check_host: bool,
        origins: browsers.OriginRule,
        token: str | None,
        machine_name: str,
        addresses: Callable[[], Iterable[str]],
    ) -> None:
        self._check_host = check_host
        self._origins = origins
        self._expected = None if token is None else token.encode()
        self._name = machine_name
        self._addresses = addresses
        # Host values allowed without asking this machine's addresses: their verdict never
        # changes, so each is worked out once (an IP literal parse costs more than the rest).
        self._allowed_hosts: set[str] = set()

    @classmethod
    def of(cls, settings: ProxySettings, env: Mapping[str, str]) -> Guard:
        """The guard for `settings`, with OLLAMA_ORIGINS from `env` (the proxy's environment)."""
        host, _ = split_listen(settings.listen)
        return cls(
            check_host=is_loopback_host(host),
            origins=browsers.origins_from(env, settings.allowed_origins),
            token=settings.token,
            machine_name=hostname(),
            addresses=local_addresses,
        )

    def admit(self, request: web.Request) -> dict[str, str]:
        """Check Host, Origin and target; the CORS headers the answer needs (may be empty)."""
        given = request.headers.get("Host", "")
        if self._check_host and not self._host_allowed(given):
            raise errors.Forbidden(
                f"Host {given!r} is not allowed: on a loopback address the proxy, like Ollama, "
                "accepts only local names and addresses (DNS-rebinding protection)"
            )
        origin = request.headers.get("Origin")
        cors: dict[str, str] = {}
        if origin is not None and browsers.is_cross_origin(origin, given):
            if not self._origins.allows(origin):
                raise errors.Forbidden(
                    f"Origin {origin!r} is not allowed: add it to OLLAMA_ORIGINS or the "
                    "proxy's allowed_origins setting"
                )
            cors = browsers.cors_headers(origin, self._origins)
        if not request.raw_path.startswith("/"):
            raise errors.BadRequest(
                "only origin-form request targets (/path?query) are accepted, "
                f"not {request.raw_path[:80]!r}"
            )
        return cors

    def _host_allowed(self, given: str) -> bool:
        if given in self._allowed_hosts:
            return True
        asked = False

        def addresses() -> Iterable[str]:
            nonlocal asked
            asked = True
            return self._addresses()

        allowed = browsers.host_allowed(given, hostname=self._name, local_addresses=addresses)
        if allowed and not asked and len(self._allowed_hosts) < _KNOWN_HOSTS:
            self._allowed_hosts.add(given)
        return allowed

    def preflight(self, request: web.Request) -> web.Response:
        """The answer to an OPTIONS request: 204, with the allow headers for a CORS origin."""
        origin = request.headers.get("Origin")
        extra = {} if origin is None else browsers.preflight_headers(origin, self._origins)
        return web.Response(status=204, headers=extra)

    def authorized(self, request: web.Request) -> bool:
        """True when no token is configured, or the request carries it as a Bearer token."""
        if self._expected is None:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        try:
            given = credentials.strip().encode("utf-8")
        except UnicodeError:  # bytes that were not text: not our token
            return False
        return scheme.lower() == "bearer" and hmac.compare_digest(given, self._expected)
