"""`lanes top` on a real pseudo-terminal: it quits on `q` and on Ctrl-C, leaving no traceback."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sys
import termios

import pytest

from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url

pytestmark = pytest.mark.skipif(os.name != "posix", reason="needs a pty")


async def _read_until(fd: int, needle: bytes, seen: bytearray, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while needle not in seen:
        assert loop.time() < deadline, f"no {needle!r} in {bytes(seen[-400:])!r}"
        try:
            seen += os.read(fd, 65536)
        except BlockingIOError:
            await asyncio.sleep(0.05)


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
