"""The miner's only HTTP module: one ClientSession, chat calls with retries, proxy /stats."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import aiohttp

from miner.metrics import CallMetrics, from_native, from_openai
from miner.retry import RetryPolicy, parse_retry_after

__all__ = ["CallError", "LanesClient", "Reply"]

Api = Literal["ollama", "openai"]
_NETWORK_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


class CallError(Exception):
    """A call that produced no usable reply; the message is one line."""

    def __init__(self, message: str, *, status: int | None = None, retries: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retries = retries


@dataclass(frozen=True, slots=True)
class Reply:
    """The model's text and Ollama's metrics for one successful call."""

    content: str
    metrics: CallMetrics
    retries: int


def _error_text(status: int, body: str) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    message: Any = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(message, dict):  # OpenAI envelope
        message = message.get("message")
    detail = str(message) if message else body.strip()[:200] or "(empty body)"
    return f"HTTP {status}: {detail}"


def _content(api: Api, data: Any) -> tuple[str, CallMetrics]:
    if not isinstance(data, dict):
        raise CallError("server reply is not a JSON object")
    if "error" in data:
        raise CallError(f"server error: {data['error']}")
    try:
        if api == "ollama":
            text = data["message"]["content"]
            metrics = from_native(data)
        else:
            text = data["choices"][0]["message"]["content"]
            metrics = from_openai(data)
    except (KeyError, IndexError, TypeError):
        raise CallError("server reply has no message content") from None
    if not isinstance(text, str):
        raise CallError("server reply content is not a string")
    return text, metrics


class LanesClient:
    """Talks to the proxy (or Ollama). Use as `async with LanesClient(...) as client:`."""

    def __init__(
        self,
        base_url: str,
        *,
        api: Api = "ollama",
        headers: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        max_connections: int = 100,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api: Api = api
        self.policy = policy or RetryPolicy()
        self.retries = 0  # across all calls, for progress and the summary
        self._headers = headers or {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        self._limit = max_connections
        self._rand = rand
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> LanesClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            headers=self._headers,
            connector=aiohttp.TCPConnector(limit=self._limit),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The shared session (only inside `async with`)."""
        if self._session is None:
            raise RuntimeError("LanesClient used outside 'async with'")
        return self._session

    async def chat(self, path: str, body: dict[str, Any]) -> Reply:
        """POST `body` to `path`; retry 502/503/504, network errors and timeouts with backoff.

        Raises CallError for any other status, a bad reply, or when the retry budget is spent."""
        url = self.base_url + path
        retry = 0
        waited = 0.0
        while True:
            retry_after: float | None = None
            try:
                async with self.session.post(url, json=body) as resp:
                    text = await resp.text()
                    if resp.status == 200:
                        try:
                            data = json.loads(text)
                        except ValueError:
                            raise CallError("server reply is not JSON", retries=retry) from None
                        content, metrics = _content(self.api, data)
                        return Reply(content, metrics, retry)
                    reason = _error_text(resp.status, text)
                    if not self.policy.retryable_status(resp.status):
                        raise CallError(reason, status=resp.status, retries=retry)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except _NETWORK_ERRORS as exc:
                kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                reason = f"{kind}: {exc}" if str(exc) else kind
            except aiohttp.ClientError as exc:  # e.g. an invalid URL: retrying cannot help
                raise CallError(f"{type(exc).__name__}: {exc}", retries=retry) from exc
            wait = self.policy.delay(
                retry, waited_s=waited, retry_after_s=retry_after, rand=self._rand()
            )
            if wait is None:
                raise CallError(f"gave up after {retry} retries: {reason}", retries=retry)
            self.retries += 1
            retry += 1
            waited += wait
            await self._sleep(wait)

    async def proxy_stats(self) -> dict[str, Any] | None:
        """The proxy's `/stats` JSON, or None when the target is not an ollama-lanes proxy."""
        try:
            async with self.session.get(
                self.base_url + "/stats", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                if resp.status != 200:
                    return None
                data = await resp.json(content_type=None)
        except (*_NETWORK_ERRORS, ValueError):
            return None
        return data if isinstance(data, dict) and "lanes" in data else None
