"""`lanes top` on a real pseudo-terminal: it quits on `q` and on Ctrl-C, leaving no traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import signal
import sys
import termios

import pytest

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.waiting import PATIENCE_S, wait_for

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs a pty")


async def _read_until(fd: int, needle: bytes, seen: bytearray) -> None:
    """Read the pty into `seen` until `needle` shows up."""

    def found() -> bool:
        with contextlib.suppress(BlockingIOError):
            seen.extend(os.read(fd, 65536))
        return needle in seen

    await wait_for(
        found,
        timeout=PATIENCE_S,
        what=lambda: f"{needle!r} in {bytes(seen[-400:])!r}",
        interval=0.05,
    )


def _drain(fd: int) -> bytes:
    """What is left to read; a closed or empty pty ends the read with an OSError."""
    out = bytearray()
    try:
        while chunk := os.read(fd, 65536):
            out += chunk
    except OSError:
        pass
    return bytes(out)


@pytest.mark.parametrize(("stop", "status"), [("q", 0), ("ctrl-c", 130)])
async def test_quits_cleanly(
    simulator: SimulatorFactory, proxy: ProxyFactory, stop: str, status: int
) -> None:
    """1. Start `lanes top` on a pty. 2. Wait for a frame. 3. Press q (or send SIGINT).
    4. It exits with 0 (or 130), prints no traceback and restores the terminal mode."""
    sim = await simulator()
    prx = await proxy(base_url(sim), lanes=2)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    os.set_blocking(master, False)
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm"}
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "proxy", "top", "--url", base_url(prx)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    seen = bytearray()
    try:
        await _read_until(master, b"lanes 0/2 busy", seen)
        if stop == "q":
            os.write(master, b"q")
        else:
            proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20.0) == status
        assert b"Traceback" not in bytes(seen) + _drain(master)
        assert termios.tcgetattr(slave) == before
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)
        os.close(slave)
