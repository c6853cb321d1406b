"""Raw HTTP/1.1 over a socket, for requests no client library will send as they are."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer

from tests.waiting import PATIENCE_S

__all__ = ["RawAnswer", "raw_request"]


@dataclass(frozen=True)
class RawAnswer:
    """A parsed HTTP/1.1 answer."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                return body
            body += await reader.readexactly(size)
            await reader.readline()
    return await reader.read()


async def raw_request(server: TestServer, data: bytes) -> RawAnswer:
    """Send `data` as it is to `server` and read one answer (the server may then close)."""
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(PATIENCE_S):
            status_line = await reader.readline()
            parts = status_line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await _read_body(reader, headers)
        return RawAnswer(int(parts[1]), headers, body)
    finally:
        writer.close()
