"""Services under test as child processes: start, wait until ready, read /proc, stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

__all__ = [
    "Service",
    "cpu_seconds",
    "free_port",
    "peak_rss_bytes",
    "process_tree",
    "python_argv",
    "rss_bytes",
    "run_json_module",
    "start_service",
    "stop_all",
]

_STARTED: list[Service] = []
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def _schedstat_ns(pid: int) -> int | None:
    """CPU nanoseconds of every thread of `pid` (/proc/<pid>/task/*/schedstat), or None."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU seconds used so far by `pids`: schedstat (ns) where readable, else stat ticks."""
    total = 0.0
    for pid in pids:
        ns = _schedstat_ns(pid)
        if ns is not None:
            total += ns / 1e9
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_bytes(pids: Sequence[int]) -> int:
    """Resident memory now (VmRSS), summed over `pids`."""
    return sum(_status_kib(pid, "VmRSS") for pid in pids) * 1024


def peak_rss_bytes(pids: Sequence[int]) -> int:
    """Peak resident memory (VmHWM), summed over `pids`."""
    return sum(_status_kib(pid, "VmHWM") for pid in pids) * 1024


@dataclass
class Service:
    """One running process under test, reachable at `url`."""

    name: str
    url: str
    process: asyncio.subprocess.Process
    log_path: Path
    notes: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        """The process and its children (nginx workers, for example)."""
        return process_tree(self.process.pid)

    def cpu(self) -> float:
        """CPU seconds used so far by the whole process tree."""
        return cpu_seconds(self.pids())

    def peak_rss(self) -> int:
        """Peak RSS of the whole process tree, bytes."""
        return peak_rss_bytes(self.pids())

    def rss(self) -> int:
        """Current RSS of the whole process tree, bytes."""
        return rss_bytes(self.pids())

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s` seconds."""
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


async def _wait_ready(service: Service, path: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if service.process.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(service.url + path) as resp:
                    if resp.status < 500:
                        return
            await asyncio.sleep(0.05)
    await service.stop()
    tail = service.log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"{service.name} did not become ready at {service.url}{path}:\n{tail}")


def _open_log(log_dir: Path, name: str) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / name


async def start_service(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    log_dir: Path,
    ready_path: str = "/",
    env: dict[str, str] | None = None,
    limit_s: float = 30.0,
) -> Service:
    """Start `argv` (listening on 127.0.0.1:`port`) and wait until `ready_path` answers."""
    log_path = _open_log(log_dir, f"{name.replace(' ', '_')}-{port}.log")
    with open(log_path, "ab") as log:  # noqa: ASYNC230 - opening a local log file is instant
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, **(env or {})},
        )
    service = Service(name, f"http://127.0.0.1:{port}", process, log_path)
    _STARTED.append(service)
    await _wait_ready(service, ready_path, limit_s)
    return service


async def stop_all() -> int:
    """Stop every service started here that is still running; returns how many were."""
    running = [s for s in _STARTED if s.process.returncode is None]
    for service in running:
        await service.stop()
    _STARTED.clear()
    return len(running)


def python_argv(*args: str) -> list[str]:
    """This interpreter running `args` (for `-m proxy ...` and `-m bench.loadgen`)."""
    return [sys.executable, *args]


async def run_json_module(module: str, spec: dict[str, Any], limit_s: float) -> dict[str, Any]:
    """Run `python -m module SPEC_JSON` and return the JSON object on its last stdout line.

    Its stdout goes to a temporary file, not a pipe: a result line of a few hundred KB was
    cut at 64 KB now and then when read from a pipe on a loaded machine.
    """
    with tempfile.TemporaryFile() as sink:
        process = await asyncio.create_subprocess_exec(
            *python_argv("-m", module, json.dumps(spec)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), limit_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"{module} took longer than {limit_s:.0f} s") from None
        sink.seek(0)
        out = sink.read()
    lines = out.decode(errors="replace").strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"{module} failed ({process.returncode}): {err.decode()[-1500:]}")
    result = json.loads(lines[-1])
    if not isinstance(result, dict):
        raise RuntimeError(f"{module} printed no JSON object")
    return result
