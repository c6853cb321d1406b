"""Fixtures for the install tests: fake external commands, a simulator process; a load helper."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.machine import processes
from tests.machine.fakes import Fakes

LINUX_PROC = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="reads Linux /proc like the doctor does there"
)


@pytest.fixture(name="fakes")
def _fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


@pytest.fixture(name="sim_process", scope="module")
def _sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`lanes simulate` as a process with OLLAMA_NUM_PARALLEL=2, like Ollama; yields its URL."""
    log = tmp_path_factory.mktemp("sim") / "sim.log"
    env = processes.child_env(log.parent, OLLAMA_NUM_PARALLEL="2")
    with processes.simulator_process(env, log) as sim:
        yield sim.url


async def load(url: str, model: str) -> None:
    """Load `model` on the simulator at `url` (an empty prompt only loads it)."""
    body = {"model": model, "prompt": "", "keep_alive": "5m"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/api/generate", json=body) as resp,
    ):
        assert resp.status == 200
