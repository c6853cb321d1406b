"""Clients that stop reading, or never finish their request head, cannot hold the proxy."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from proxy.relay.app import GATE
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url, sim_stats
from tests.waiting import PATIENCE_S, wait_for

MODEL = "llama3.2:latest"


async def _stats(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


def _stalling_client(server: TestServer) -> socket.socket:
    """A socket with a tiny receive buffer that sends one long generate and never reads."""
    assert server.port is not None
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    body = json.dumps(
        {"model": MODEL, "prompt": "tell me everything", "options": {"num_predict": HOLD_TOKENS}}
    ).encode()
    sock.sendall(
        b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Lanes-Client: stuck\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    return sock


class TestStalledClient:
    async def test_a_client_that_stops_reading_loses_its_lane(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. One lane; a client sends a long stream and never reads it.
        2. A second request queues behind it.
        3. Within timeout_client_write_s of the stall the lane is freed, the upstream request
           aborted, the second request runs to the end, and /stats counts one stall.
        """
        sim = await simulator(lanes=1, decode_tps=50_000.0)
        prx = await proxy(base_url(sim), lanes=1, timeout_client_write_s=0.5)
        url, gate = base_url(prx), prx.app[GATE]
        stuck = _stalling_client(prx)
        try:
            await wait_for(lambda: gate.busy == 1, timeout=PATIENCE_S, what="the stuck lane")
            body = {"model": MODEL, "prompt": "hi", "stream": False}
            async with aiohttp.ClientSession() as s:
                waiting = asyncio.create_task(s.post(url + "/api/generate", json=body))
                await wait_for(lambda: gate.depth == 1, timeout=PATIENCE_S, what="one queued")
                resp = await waiting
                assert resp.status == 200
                assert (await resp.json())["done"] is True
        finally:
            stuck.close()
        doc = await _stats(url)
        assert doc["counters"]["client_stalled"] == 1
        assert doc["counters"]["cancelled_while_running"] == 1
        assert doc["counters"]["completed"] == 1
        assert (await sim_stats(sim))["models"][MODEL]["cancellations"] >= 1
        assert gate.busy == 0


class TestSlowHeaders:
    async def test_a_connection_that_never_finishes_its_head_is_closed(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A client that trickles a request head is closed after timeout_client_header_s."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, timeout_client_header_s=0.3)
        assert prx.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", prx.port)
        closed = False
        try:
            writer.write(b"POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            for _ in range(int(PATIENCE_S / 0.1)):  # one header byte per 100 ms, never done
                writer.write(b"X")
                await writer.drain()
                try:
                    async with asyncio.timeout(0.1):
                        if await reader.read(1) == b"":
                            closed = True
                            break
                except TimeoutError:
                    continue
        except ConnectionError:
            closed = True
        finally:
            writer.close()
        assert closed, "the proxy kept a connection that never sent a whole head"

    async def test_a_whole_head_in_time_is_answered(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """The header timeout leaves normal requests alone."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=1, timeout_client_header_s=0.3)
        async with aiohttp.ClientSession() as s, s.get(base_url(prx) + "/api/version") as r:
            assert r.status == 200
