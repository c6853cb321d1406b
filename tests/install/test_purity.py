"""The planning and judging modules stay pure: no HTTP, no processes, no sockets."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

PURE = (
    "proxy.install.service",
    "proxy.install.service_plan",
    "proxy.install.config_edit",
    "proxy.install.options",
    "proxy.install.doctor",
    "proxy.install.doctor_facts",
    "proxy.install.doctor_lanes",
    "proxy.install.finding",
    "proxy.install.kv_cache",
    "proxy.install.tune",
)
IO_MODULES = {"aiohttp", "asyncio", "subprocess", "socket", "urllib.request", "shutil"}


class TestPurity:
    def test_pure_modules_do_not_import_io(self) -> None:
        """None of them imports an I/O library itself."""
        for name in PURE:
            spec = importlib.util.find_spec(name)
            assert spec is not None
            assert spec.origin is not None
            tree = ast.parse(Path(spec.origin).read_text())
            imported = {
                alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.Import)
                for alias in node.names
            } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
            assert imported.isdisjoint(IO_MODULES), name

    def test_importing_them_loads_no_aiohttp(self) -> None:
        """Not even indirectly: aiohttp stays out of sys.modules."""
        code = f"import sys\nfor n in {PURE!r}: __import__(n)\nprint('aiohttp' in sys.modules)"
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert done.stdout.strip() == "False"
