"""Short-lived signed session values: how the feed authenticates a page (EventSource sends no
headers, so the page cannot give `/stats/stream` its bearer token)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

__all__ = ["PURPOSE", "SESSION_TTL_S", "SessionKeys"]

SESSION_TTL_S = 60.0
PURPOSE = b"ollama-lanes /stats/stream"  # signed into every value: good for nothing else


class SessionKeys:
    """Mints and checks `<expiry>.<hmac>` values with a key that lives only in this process.

    A value is HMAC-SHA256 over the purpose and its expiry (monotonic seconds): it opens the
    feed until it expires and nothing else, and no value outlives the process (a restart draws
    a new key). Checking is constant-time and never raises.
    """

    def __init__(
        self,
        *,
        ttl_s: float = SESSION_TTL_S,
        key: bytes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self._key = key if key is not None else secrets.token_bytes(32)
        self._clock = clock

    def _sign(self, expiry: str) -> str:
        return hmac.new(self._key, PURPOSE + b"|" + expiry.encode(), hashlib.sha256).hexdigest()

    def mint(self) -> str:
        """A fresh value that opens the feed for `ttl_s` seconds."""
        expiry = f"{self._clock() + self.ttl_s:.3f}"
        return f"{expiry}.{self._sign(expiry)}"

    def valid(self, value: str) -> bool:
        """True for a value this process minted that has not expired yet."""
        expiry, _, mac = value.rpartition(".")
        if not expiry or len(mac) != 64:
            return False
        try:
            deadline = float(expiry)
        except ValueError:
            return False
        signed = hmac.compare_digest(mac.encode("ascii", "replace"), self._sign(expiry).encode())
        now = self._clock()
        return signed and now < deadline <= now + self.ttl_s
