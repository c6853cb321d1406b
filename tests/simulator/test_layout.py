"""The simulator's pure modules stay free of aiohttp; nothing in it imports tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PURE = (
    "model",
    "state",
    "wire",
    "content",
    "schema",
    "jobs",
    "faults",
    "settings",
    "catalog",
    "facts",
    "environment",
)


@pytest.mark.parametrize("module", PURE)
def test_pure_module_does_not_import_aiohttp(module: str) -> None:
    """Importing proxy.simulator.<module> leaves aiohttp unloaded."""
    code = f"import sys, proxy.simulator.{module}; print('aiohttp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_simulator_never_imports_tests() -> None:
    """The simulator ships in the wheel, so it must not import pytest or tests/."""
    root = Path(__file__).resolve().parents[2] / "proxy" / "simulator"
    for path in root.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import pytest" not in text, path
        assert "from tests" not in text, path
