"""Request bodies: small ones in memory, large ones on disk while they wait for a lane."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import aiohttp
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.relay.app import GATE
from proxy.relay.body import SPILL_BYTES, RequestBody
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import base_url
from tests.waiting import PATIENCE_S, wait_for


class TestRequestBody:
    def test_a_small_body_stays_in_memory(self) -> None:
        """Up to SPILL_BYTES the body is bytes in memory."""
        body = RequestBody(b'{"model":"m"}')
        assert (body.on_disk, body.size, body.payload()) == (False, 13, b'{"model":"m"}')

    def test_a_large_body_waits_on_disk_and_reads_back_whole(self) -> None:
        """Past SPILL_BYTES the body moves to an unlinked file; payload and document agree."""
        raw = json.dumps({"model": "m", "images": ["A" * (2 * SPILL_BYTES)]}).encode()
        body = RequestBody()
        for start in range(0, len(raw), 65536):
            body.append(raw[start : start + 65536])
        assert body.on_disk
        stream = body.payload()
        assert not isinstance(stream, bytes)
        assert stream.read() == raw
        again = body.payload()
        assert not isinstance(again, bytes)
        assert again.read(5) == raw[:5]  # a retry sends it from the start again
        assert body.document()["model"] == "m"
        fd = stream.fileno()
        assert os.fstat(fd).st_nlink == 0  # no name on disk: gone with the last handle
        body.close()
        assert not body.on_disk

    def test_replace_keeps_a_large_rewrite_on_disk(self) -> None:
        """A body a pin rewrote is held the same way: large ones on disk."""
        body = RequestBody(b"{}")
        body.replace(b"x" * (SPILL_BYTES + 1))
        assert (body.on_disk, body.size) == (True, SPILL_BYTES + 1)
        body.close()


class TestLargeBodiesEndToEnd:
    async def test_a_queued_image_payload_reaches_ollama_intact(
        self, aiohttp_server: AiohttpServer, proxy: ProxyFactory
    ) -> None:
        """1. One lane is held by a request the upstream answers only when told.
        2. A 3 MiB body queues behind it (on disk).
        3. Released, the upstream receives the body byte for byte.
        """
        release = asyncio.Event()
        received: list[bytes] = []

        async def generate(request: web.Request) -> web.Response:
            data = await request.read()
            if b'"hold"' in data:
                await release.wait()
            else:
                received.append(data)
            return web.json_response({"model": "m", "response": "", "done": True})

        upstream = web.Application(client_max_size=64 * 2**20)
        upstream.router.add_post("/api/generate", generate)
        up = await aiohttp_server(upstream)
        prx = await proxy(base_url(up), lanes=1)
        url, gate = base_url(prx), prx.app[GATE]
        image = base64.b64encode(os.urandom(3 * 2**20 // 4 * 3)).decode()
        big = {"model": "m", "prompt": "describe", "images": [image], "stream": False}
        async with aiohttp.ClientSession() as s:
            holder = asyncio.create_task(
                s.post(url + "/api/generate", json={"model": "m", "prompt": "hold"})
            )
            await wait_for(lambda: gate.busy == 1, timeout=PATIENCE_S, what="the held lane")
            queued = asyncio.create_task(s.post(url + "/api/generate", json=big))
            await wait_for(lambda: gate.depth == 1, timeout=PATIENCE_S, what="the big body queued")
            release.set()
            for task in (holder, queued):
                resp = await task
                assert resp.status == 200
                resp.release()
        assert len(received) == 1
        assert json.loads(received[0]) == big
