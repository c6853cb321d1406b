"""What the benchmarks ran on: cores, CPU model, memory, kernel, Python and package versions."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ["Machine", "describe_machine"]

_PACKAGES = ("aiohttp", "uvloop", "pydantic", "ollama-lanes")


@dataclass(frozen=True)
class Machine:
    """One machine's description, as rows of (what, value)."""

    rows: list[tuple[str, str]] = field(default_factory=list)

    def markdown(self) -> str:
        """A two-column Markdown table."""
        lines = ["| what | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in self.rows]
        return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _command_version(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if done.returncode == 0 and text else None


def describe_machine(extra: dict[str, str] | None = None) -> Machine:
    """Describe this machine; `extra` adds rows such as contender versions."""
    rows = [
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
        ("memory", _memory()),
        ("OS", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    rows += [(name, _version(name)) for name in _PACKAGES]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load is not None:
        rows.append(("load average at start", " / ".join(f"{x:.2f}" for x in load)))
    rows += sorted((extra or {}).items())
    return Machine(rows)


def nginx_version(binary: str) -> str | None:
    """`nginx -v` output's first line, or None."""
    return _command_version([binary, "-v"])
