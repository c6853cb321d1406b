"""The installed `lanes` script, the program the services `lanes install` writes start."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from proxy.machine.machine import Machine

__all__ = ["find_lanes_exe"]


def find_lanes_exe(machine: Machine, argv0: str | None = None) -> Path | None:
    """The installed `lanes` script: the one running now, else next to Python, else on PATH."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    candidates = [Path(argv0)] if Path(argv0).name == "lanes" else []
    candidates.append(Path(sys.executable).parent / "lanes")
    on_path = machine.which("lanes")
    if on_path is not None:
        candidates.append(Path(on_path))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path.absolute()
    return None
