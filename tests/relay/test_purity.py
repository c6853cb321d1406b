"""The request path's pure helpers, and the shared basics they use, import no asyncio."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "ollama",
        "errors",
        "upstream_specs",
        "relay.headers",
        "relay.health",
        "relay.merge",
        "relay.pinning",
    ],
)
def test_pure_module_imports_no_io(module: str) -> None:
    """Importing the module loads neither asyncio nor aiohttp."""
    probe = "print(sorted({'asyncio', 'aiohttp'} & set(sys.modules)))"
    code = f"import sys, proxy.{module}; {probe}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
