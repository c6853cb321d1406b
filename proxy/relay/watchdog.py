"""Watchdog: one timer for an upstream's silence and a client's write that makes no progress."""

from __future__ import annotations

import asyncio

import aiohttp

__all__ = ["Watchdog"]


class Watchdog:
    """One timer for two limits: the upstream's silence between chunks (`idle_s`) and a write
    to the client that makes no progress (`write_s`). It is re-armed lazily, so a chunk costs
    one clock read; when a limit passes it closes the upstream response (the only cancel
    Ollama understands) and, for a stalled client, aborts the client's connection too.
    """

    __slots__ = (
        "_handle",
        "_idle_s",
        "_last_chunk",
        "_loop",
        "_resp",
        "_transport",
        "_write_s",
        "_write_since",
        "fired",
    )

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        transport: asyncio.BaseTransport | None,
        *,
        idle_s: float,
        write_s: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._resp, self._transport = resp, transport
        self._idle_s, self._write_s = idle_s, write_s
        self._last_chunk = self._loop.time()
        self._write_since: float | None = None
        self._handle = self._loop.call_at(self._next_check(self._last_chunk), self._check)
        self.fired: str | None = None  # "upstream_idle" or "client_stalled"

    def chunk_read(self) -> None:
        """A chunk came from upstream, and its write to the client starts now."""
        self._last_chunk = self._write_since = self._loop.time()

    def writing(self) -> None:
        """A write to the client starts now (one not preceded by a chunk)."""
        self._write_since = self._loop.time()

    def written(self) -> None:
        """The write went out (into the client's socket buffer)."""
        self._write_since = None

    def _next_check(self, now: float) -> float:
        due = self._last_chunk + self._idle_s
        if self._write_since is not None:
            return min(due, self._write_since + self._write_s)
        return min(due, now + self._write_s)  # so a write that starts later is caught in time

    def _check(self) -> None:
        now = self._loop.time()
        if self._write_since is not None and now - self._write_since >= self._write_s:
            self.fired = "client_stalled"
            self._resp.close()
            if isinstance(self._transport, asyncio.WriteTransport):
                self._transport.abort()
        elif now - self._last_chunk >= self._idle_s and self._write_since is None:
            self.fired = "upstream_idle"
            self._resp.close()
        else:
            self._handle = self._loop.call_at(self._next_check(now), self._check)

    def cancel(self) -> None:
        self._handle.cancel()
