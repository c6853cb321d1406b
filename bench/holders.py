"""Held requests: load-generator processes that keep requests open until told to let go."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict

from bench.contenders import SIM_MODEL
from bench.loadgen import LoadSpec
from bench.procs import python_argv

__all__ = ["HOLD", "QUIET_PROXY", "hold_requests", "release"]

# The proxy's upstream poll and health check (every 5 s by default) each cost a few ms of
# CPU: landing in the idle window they made the idle rate several times too high, so that a
# smoke run's small admission cost came out negative ("not measured"). Off while measuring.
QUIET_PROXY = ("--stats-poll-s=86400", "--health-interval-s=86400")

# Each held request asks for far more tokens than the blocked lane will ever produce.
HOLD = {"model": SIM_MODEL, "prompt": "hold", "stream": False, "options": {"num_predict": 10**6}}


async def hold_requests(url: str, count: int) -> asyncio.subprocess.Process:
    """A load generator holding `count` requests open at `url` (returns once all are sent)."""
    spec = LoadSpec(url=url, body=HOLD, mode="hold", requests=count, timeout_s=3600)
    process = await asyncio.create_subprocess_exec(
        *python_argv("-m", "bench.loadgen", json.dumps(asdict(spec))),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 120)
    if b"launched" not in line:
        raise RuntimeError(f"load generator did not launch: {line[:200]!r}")
    return process


async def release(holders: list[asyncio.subprocess.Process]) -> None:
    """Close the load generators' stdin: they cancel their requests and exit."""
    for process in holders:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
    for process in holders:
        try:
            await asyncio.wait_for(process.wait(), 60)
        except TimeoutError:
            process.kill()
            await process.wait()
