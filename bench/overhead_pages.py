"""`python -m bench.overhead_pages URL COUNT`: COUNT open dashboards on the proxy at URL.

Each is a reader of `/stats/stream` that takes every event, as a page's EventSource would: an
honest stand-in for open pages as far as the proxy is concerned (it serves the same feed; a
real page also draws, in its browser). They run in their own process, as a browser would.
Prints `{"event": "open"}` once every reader has its first event, then, when stdin closes,
`{"event": "closed", "events": N}` with the `stats` events received in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys

import aiohttp

__all__ = ["main"]


async def _read(
    session: aiohttp.ClientSession, url: str, seen: asyncio.Event, got: list[int]
) -> None:
    async with session.get(url + "/stats/stream") as resp:
        async for line in resp.content:
            if line.startswith(b"event: stats"):
                got[0] += 1
                seen.set()


async def run(url: str, count: int) -> int:
    """Hold `count` feeds open until stdin closes; returns the stats events received."""
    got = [0]
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        first = [asyncio.Event() for _ in range(count)]
        tasks = [asyncio.create_task(_read(session, url, seen, got)) for seen in first]
        await asyncio.wait_for(asyncio.gather(*(seen.wait() for seen in first)), 30)
        print(json.dumps({"event": "open"}), flush=True)
        await asyncio.to_thread(sys.stdin.read)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task
    return got[0]


def main() -> int:
    """Run from the command line (see the module docstring)."""
    events = asyncio.run(run(sys.argv[1], int(sys.argv[2])))
    print(json.dumps({"event": "closed", "events": events}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
