"""The `fakes` fixture: fake external commands and the test machines that use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.machine.fakes import Fakes


@pytest.fixture(name="fakes")
def _fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path)
