"""The HTTP client's retry behaviour, against a scripted aiohttp server on a real socket.

(aioresponses does not work with the installed aiohttp 3.14, so a tiny scripted app
stands in: each request takes the next step of the script.)"""

from __future__ import annotations

from typing import Any

import pytest

from miner.client import CallError, LanesClient
from miner.retry import RetryPolicy
from tests.miner.conftest import FINAL, ServerFactory, Sleeps


def _client(url: str, sleeps: Sleeps, **policy: Any) -> LanesClient:
    return LanesClient(
        url,
        policy=RetryPolicy(**policy),
        rand=lambda: 0.0,
        sleep=sleeps,
        headers={"X-Lanes-Client": "miner"},
        timeout_s=5,
    )


class TestChat:
    async def test_success_reads_content_and_metrics(self, scripted: ServerFactory) -> None:
        """A 200 gives the content and Ollama's metrics."""
        url, seen = await scripted([("json", 200, FINAL)])
        async with _client(url, Sleeps()) as client:
            reply = await client.chat("/api/chat", {"model": "m"})
        assert seen[0]["X-Lanes-Client"] == "miner"
        assert (
            reply.content,
            reply.metrics.prompt_eval_count,
            reply.metrics.eval_count,
            reply.metrics.done_reason,
            reply.retries,
        ) == ("{}", 1200, 30, "stop", 0)

    async def test_503_retried_honouring_retry_after(self, scripted: ServerFactory) -> None:
        """503s are retried; Retry-After sets the wait; retries are counted."""
        url, _ = await scripted(
            [
                ("json", 503, {"error": "queue full"}, {"Retry-After": "3"}),
                ("text", 502, "bad gateway"),
                ("json", 200, FINAL),
            ]
        )
        sleeps = Sleeps()
        async with _client(url, sleeps, base_s=1.0) as client:
            reply = await client.chat("/api/chat", {})
            assert client.retries == 2
        assert reply.retries == 2
        assert sleeps.waits == [3.0, 1.0]  # Retry-After, then base * 2**1 / 2

    async def test_dropped_connection_and_timeout_retried(self, scripted: ServerFactory) -> None:
        """A dropped connection and a timeout are retried like 503s."""
        url, _ = await scripted([("drop",), ("sleep", 3.0), ("json", 200, FINAL)])
        client = LanesClient(url, rand=lambda: 0.0, sleep=Sleeps(), timeout_s=0.5)
        async with client:
            reply = await client.chat("/api/chat", {})
        assert reply.retries == 2

    async def test_connection_refused_gives_up(self) -> None:
        """Nothing listening: retried, then a CallError naming the reason."""
        sleeps = Sleeps()
        async with _client("http://127.0.0.1:9", sleeps, attempts=2) as client:
            with pytest.raises(CallError, match="gave up after 2 retries: Client"):
                await client.chat("/api/chat", {})
        assert len(sleeps.waits) == 2

    async def test_gives_up_after_attempts(self, scripted: ServerFactory) -> None:
        """Past the retry count the call fails with the last reason."""
        url, _ = await scripted([("json", 504, {"error": "upstream timeout"})] * 3)
        async with _client(url, Sleeps(), attempts=2) as client:
            with pytest.raises(CallError, match="gave up after 2 retries: HTTP 504: upstream"):
                await client.chat("/api/chat", {})

    async def test_500_not_retried(self, scripted: ServerFactory) -> None:
        """A 500 is an answer: no retry, the error text is kept."""
        url, _ = await scripted([("json", 500, {"error": "llama runner crashed"})])
        sleeps = Sleeps()
        async with _client(url, sleeps) as client:
            with pytest.raises(CallError, match="HTTP 500: llama runner crashed") as info:
                await client.chat("/api/chat", {})
        assert (info.value.status, sleeps.waits) == (500, [])

    async def test_openai_envelope_and_reply(self, scripted: ServerFactory) -> None:
        """/v1 replies: content from choices, usage as metrics; errors from the envelope."""
        ok = {
            "choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7},
        }
        url, _ = await scripted(
            [("json", 400, {"error": {"message": "bad", "type": "x"}}), ("json", 200, ok)]
        )
        async with LanesClient(url, api="openai", sleep=Sleeps()) as client:
            with pytest.raises(CallError, match="HTTP 400: bad"):
                await client.chat("/v1/chat/completions", {})
            reply = await client.chat("/v1/chat/completions", {})
        assert (
            reply.content,
            reply.metrics.prompt_eval_count,
            reply.metrics.eval_count,
            reply.metrics.length_stop,
        ) == ("hi", 5, 7, True)

    async def test_error_body_in_200(self, scripted: ServerFactory) -> None:
        """A 200 whose body is an error object, or not JSON, is a failed call."""
        url, _ = await scripted([("json", 200, {"error": "boom"}), ("text", 200, "{oops")])
        async with _client(url, Sleeps()) as client:
            with pytest.raises(CallError, match="server error: boom"):
                await client.chat("/api/chat", {})
            with pytest.raises(CallError, match="not JSON"):
                await client.chat("/api/chat", {})


class TestProxyStats:
    async def test_proxy_detected(self, scripted: ServerFactory) -> None:
        """/stats with a `lanes` key means the target is our proxy."""
        url, _ = await scripted([("json", 200, {"lanes": {"configured": 2}})])
        async with LanesClient(url) as client:
            assert await client.proxy_stats() == {"lanes": {"configured": 2}}

    async def test_plain_ollama_gives_none(self, scripted: ServerFactory) -> None:
        """A 404 (plain Ollama) or an unrelated body gives None."""
        url, _ = await scripted([("json", 404, {"error": "not found"}), ("json", 200, {"x": 1})])
        async with LanesClient(url) as client:
            assert await client.proxy_stats() is None
            assert await client.proxy_stats() is None
