"""The `fakes` fixture (fake external commands, test machines), and a helper for the live tests."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.machine.fakes import Fakes


@pytest.fixture(name="fakes")
def _fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)


async def load(url: str, model: str) -> None:
    """Load `model` on the simulator at `url` (an empty prompt only loads it)."""
    body = {"model": model, "prompt": "", "keep_alive": "5m"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/api/generate", json=body) as resp,
    ):
        assert resp.status == 200
