"""`/stats/stream` through real sockets: events, sessions, limits, stalls, shutdown, logs."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import MutableMapping
from typing import Any

import aiohttp

from proxy.dashboard.frames import QueueFeed
from proxy.relay.app import FEED
from proxy.stats.schema import StatsView
from tests.dashboard.support import events, generate, hold
from tests.fixtures_proxy import ProxyFactory, gate_of
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.waiting import PATIENCE_S, wait_for

TOKEN = "dashboard-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def _session_value(session: aiohttp.ClientSession, url: str) -> str:
    async with session.post(url + "/dashboard/session", headers=BEARER) as resp:
        assert resp.status == 200
        value: str = (await resp.json())["session"]
        return value


async def _status(session: aiohttp.ClientSession, url: str, **kw: Any) -> int:
    async with session.get(url, **kw) as resp:
        return resp.status


class TestEvents:
    async def test_a_stream_opens_with_a_stats_and_a_queue_event(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The first frame: `stats` (a /stats document), then `queue`, sent at once."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        async with (
            aiohttp.ClientSession() as session,
            session.get(base_url(prx) + "/stats/stream") as resp,
        ):
            stream = events(resp)
            first, second = await anext(stream), await anext(stream)
        assert (first[0], second[0]) == ("stats", "queue")
        StatsView.model_validate(first[1])
        QueueFeed.model_validate(second[1])

    async def test_the_stream_is_event_stream_never_stored(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """text/event-stream, Cache-Control no-store, nosniff."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        async with (
            aiohttp.ClientSession() as session,
            session.get(base_url(prx) + "/stats/stream") as resp,
        ):
            headers = resp.headers
        assert (
            resp.content_type,
            headers["Cache-Control"],
            headers["X-Content-Type-Options"],
        ) == ("text/event-stream", "no-store", "nosniff")

    async def test_a_request_taking_a_lane_shows_in_the_feed(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Once a request holds a lane, a following stats event lists its client there."""
        sim = await simulator(decode_tps=50.0)
        prx = await proxy(base_url(sim), lanes=1)
        url = base_url(prx)
        async with aiohttp.ClientSession() as session, session.get(url + "/stats/stream") as r:
            stream = events(r)
            await anext(stream)
            task = hold(session, url, "notebook")

            async def holder() -> list[str]:
                async for name, doc in stream:
                    if name == "stats" and doc["lanes"]["running"]:
                        return [row["client"] for row in doc["lanes"]["running"]]
                return []

            assert await asyncio.wait_for(holder(), PATIENCE_S) == ["notebook"]
            task.cancel()

    async def test_the_queue_event_names_the_next_client_of_each_class(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """With the lane held and two clients waiting in batch, the queue event says who is next."""
        sim = await simulator(decode_tps=50.0)
        prx = await proxy(base_url(sim), lanes=1)
        url = base_url(prx)
        async with aiohttp.ClientSession() as session:
            tasks = [hold(session, url, "first")]
            await wait_for(lambda: gate_of(prx).busy == 1, timeout=PATIENCE_S, what="a held lane")
            tasks.append(hold(session, url, "miner", "batch"))
            await wait_for(lambda: gate_of(prx).depth == 1, timeout=PATIENCE_S, what="1 waiting")
            tasks.append(hold(session, url, "notes", "batch"))
            await wait_for(lambda: gate_of(prx).depth == 2, timeout=PATIENCE_S, what="2 waiting")
            async with session.get(url + "/stats/stream") as resp:
                frame = [doc async for name, doc in _first(events(resp), 2) if name == "queue"]
            queue = frame[0]
            for task in tasks:
                task.cancel()
        assert queue["next_in_class"] == {"batch": "miner"}
        assert [(c["client"], c["waiting"], c["next_in"]) for c in queue["clients"]] == [
            ("miner", 1, ["batch"]),
            ("notes", 1, []),
        ]


async def _first(stream: Any, count: int) -> Any:
    for _ in range(count):
        yield await anext(stream)


class TestSessions:
    async def test_a_session_value_opens_the_feed(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """POST /dashboard/session with the token mints a value that opens /stats/stream."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        url = base_url(prx)
        async with aiohttp.ClientSession() as session:
            value = await _session_value(session, url)
            opened = await _status(session, url + "/stats/stream", params={"session": value})
        assert opened == 200

    async def test_the_session_answer_is_never_stored(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The minted value comes with Cache-Control no-store and its lifetime."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        async with (
            aiohttp.ClientSession() as session,
            session.post(base_url(prx) + "/dashboard/session", headers=BEARER) as resp,
        ):
            doc = await resp.json()
            assert (resp.headers["Cache-Control"], doc["expires_in_s"]) == ("no-store", 60.0)

    async def test_a_forged_or_missing_session_gets_401(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Without a valid value or the token, the feed answers 401 in Ollama's error shape."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        url = base_url(prx) + "/stats/stream"
        async with aiohttp.ClientSession() as session:
            statuses = [
                await _status(session, url),
                await _status(session, url, params={"session": "9999999999.000." + "0" * 64}),
                await _status(session, url, params={"session": TOKEN}),
            ]
            async with session.get(url) as resp:
                body = await resp.json()
        assert statuses == [401, 401, 401]
        assert list(body) == ["error"]

    async def test_a_session_value_opens_nothing_but_the_feed(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The value is single-purpose: /stats, /queue and the session route refuse it."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        url = base_url(prx)
        async with aiohttp.ClientSession() as session:
            value = await _session_value(session, url)
            params = {"session": value}
            statuses = [
                await _status(session, url + "/stats", params=params),
                await _status(session, url + "/queue", params=params),
                await _status(session, url + "/api/tags", params=params),
            ]
            async with session.post(url + "/dashboard/session", params=params) as resp:
                statuses.append(resp.status)
        assert statuses == [401, 401, 401, 401]

    async def test_the_bearer_token_opens_the_feed_too(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A client that can send headers (curl -N) uses the token itself."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        async with aiohttp.ClientSession() as session:
            assert await _status(session, base_url(prx) + "/stats/stream", headers=BEARER) == 200

    async def test_a_foreign_origin_cannot_open_the_feed_or_mint(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A cross-origin request from an origin Ollama would refuse gets 403 on both routes."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        url = base_url(prx)
        foreign = {"Origin": "https://evil.example"}
        async with aiohttp.ClientSession() as session:
            stream = await _status(session, url + "/stats/stream", headers=foreign)
            async with session.post(url + "/dashboard/session", headers=foreign) as resp:
                minted = resp.status
        assert (stream, minted) == (403, 403)

    async def test_neither_token_nor_session_value_reaches_the_logs(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        captured_logs: list[MutableMapping[str, Any]],
    ) -> None:
        """Minting and using a session logs the requests, never the token or the value."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, auth_token=TOKEN)
        url = base_url(prx)
        async with aiohttp.ClientSession() as session:
            value = await _session_value(session, url)
            async with session.get(url + "/stats/stream", params={"session": value}) as resp:
                await anext(events(resp))
            await _status(session, url + "/stats/stream", params={"session": value + "0"})
        paths = [e.get("path") for e in captured_logs if e["event"] == "request_finished"]
        assert {"/dashboard/session", "/stats/stream"} == set(paths)
        logged = json.dumps(captured_logs, default=str)
        assert (TOKEN in logged, value.split(".")[1] in logged) == (False, False)


class TestLimits:
    async def test_the_33rd_stream_gets_503_in_ollamas_shape(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """32 open feeds are served; one more is answered 503 `{"error": ...}` with
        Retry-After."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        url = base_url(prx) + "/stats/stream"
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            opened = [await session.get(url) for _ in range(32)]
            async with session.get(url) as refused:
                body = await refused.json()
                answer = (refused.status, refused.headers.get("Retry-After"), list(body))
            for resp in opened:
                resp.close()
        assert ([r.status for r in opened], answer) == ([200] * 32, (503, "5", ["error"]))

    async def test_a_stalled_reader_is_dropped_while_requests_flow(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A feed reader that reads nothing is cut and counted; meanwhile requests keep
        completing and a second reader keeps getting events. (60 client keys make the frames
        big, so the stalled reader's buffers fill in seconds.)"""
        sim = await simulator(lanes=4)
        prx = await proxy(base_url(sim), lanes=4)
        url = base_url(prx)
        feed = prx.app[FEED]
        stalled = await _stalled_reader(prx.port or 0)
        completed = 0
        async with aiohttp.ClientSession() as session, session.get(url + "/stats/stream") as resp:
            reading = events(resp)

            async def traffic(worker: int) -> None:
                nonlocal completed
                while True:
                    client = f"app-{(completed * 4 + worker) % 60}"
                    assert await generate(session, url, client=client, tokens=2) == 200
                    completed += 1

            workers = [asyncio.create_task(traffic(n)) for n in range(4)]

            async def drained() -> bool:
                await anext(reading)
                return feed.dropped == 1

            await wait_for(drained, timeout=120.0, what="the stalled reader to be dropped")
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        stalled.close()
        assert (feed.dropped, completed > 0) == (1, True)

    async def test_stopping_the_proxy_ends_open_streams(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """When the proxy stops, a reader's stream ends (cleanly, at a frame's end) instead of
        hanging on, and the proxy's shutdown does not wait for it."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1)
        async with (
            aiohttp.ClientSession() as session,
            session.get(base_url(prx) + "/stats/stream") as resp,
        ):
            await anext(events(resp))
            await asyncio.wait_for(prx.close(), PATIENCE_S)
            rest = await asyncio.wait_for(resp.content.read(), PATIENCE_S)
        assert (rest.endswith(b"\n\n") or rest == b"", resp.content.at_eof()) == (True, True)


async def _stalled_reader(port: int) -> socket.socket:
    """A connection that asks for the feed with a tiny receive window and never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"GET /stats/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock
