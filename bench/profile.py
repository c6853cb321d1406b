"""Where `lanes serve` spends its CPU: `python -m bench.profile` samples it with py-spy.

It starts the simulator (no work) and the proxy (or, with `--floor`, bench/floor.py),
installs py-spy into bench/.venv-prof when missing, records the process while a
load-generator process sends tiny requests, and prints as Markdown the functions with the
most samples (self and inclusive) and each sample charged to the deepest proxy/ frame on its
stack. `--raw FILE` keeps py-spy's raw (collapsed) stacks.

py-spy samples a thread while it is runnable, so a socket write that wakes the receiving
process can be charged with time spent preempted: read CPU from /proc schedstat, and these
samples for where the Python work goes.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from bench.contenders import (
    BENCH_DIR,
    SIM_MODEL,
    SimTiming,
    start_floor,
    start_lanes,
    start_simulator,
)
from bench.loadgen import LoadSpec
from bench.procs import run_json_module, stop_all

__all__ = ["by_proxy_frame", "main", "summarize"]

PROF_VENV = BENCH_DIR / ".venv-prof"


def py_spy() -> Path:
    """py-spy from its own venv, installed from PyPI the first time."""
    binary = PROF_VENV / "bin" / "py-spy"
    if not binary.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(PROF_VENV)], check=True)
        pip = [str(PROF_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "py-spy"]
        subprocess.run(pip, check=True)
    return binary


def _stacks(raw: str) -> Iterator[tuple[list[str], int]]:
    """Each stack of py-spy's raw (collapsed) output, outermost frame first, with its count."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def summarize(raw: str, top: int = 15) -> list[str]:
    """Markdown tables of the hottest frames in py-spy's raw (collapsed stack) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(raw):
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples.", "", "| self | function |", "|---|---|"]
    lines += [f"| {n / total:.1%} | `{f}` |" for f, n in own.most_common(top)]
    # Frames in three quarters of all samples are the entry chain (main, serve, the loop).
    ours = [(f, n) for f, n in inclusive.most_common() if "proxy/" in f and n < 0.75 * total]
    lines += ["", "| inclusive | function in proxy/ |", "|---|---|"]
    lines += [f"| {n / total:.1%} | `{f}` |" for f, n in ours[:top]]
    return lines


def by_proxy_frame(raw: str, top: int = 30) -> list[str]:
    """A Markdown table: each sample charged to the deepest proxy/ frame on its stack (the
    proxy line that led to the work), else to its innermost frame, marked as outside."""
    charged: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(raw):
        ours = [f for f in frames if "proxy/" in f]
        total += count
        charged[ours[-1] if ours else f"(no proxy frame) {frames[-1]}"] += count
    if not total:
        return ["(no samples)"]
    lines = ["| share | deepest proxy/ frame |", "|---|---|"]
    return lines + [f"| {n / total:.1%} | `{f}` |" for f, n in charged.most_common(top)]


async def _profile(
    requests: int, concurrency: int, tmp: Path, *, floor: bool, rate: int = 250
) -> str:
    sim = await start_simulator(SimTiming(lanes=128), tmp)
    if floor:
        proxy = await start_floor(sim.url, tmp)
    else:
        proxy = await start_lanes(sim.url, tmp, lanes=128)
    out = tmp / "profile.txt"
    try:
        spy = await asyncio.create_subprocess_exec(
            str(py_spy()), "record", "-p", str(proxy.process.pid), "-r", str(rate), "-f", "raw",
            "-o", str(out), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.0)
        body = {"model": SIM_MODEL, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
        spec = LoadSpec(url=proxy.url, body=body, concurrency=concurrency, requests=requests)
        await run_json_module("bench.loadgen", asdict(spec), limit_s=600)
        spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
        await asyncio.wait_for(spy.wait(), 30)
    finally:
        await stop_all()
    return out.read_text() if out.is_file() else ""


def main(argv: list[str] | None = None) -> int:
    """Profile the proxy (or the floor) under tiny requests and print the hottest functions."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--floor", action="store_true", help="profile bench/floor.py instead")
    parser.add_argument("--raw", type=Path, help="also write py-spy's raw stacks here")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        raw = asyncio.run(
            _profile(args.requests, args.concurrency, Path(tmp), floor=args.floor, rate=args.rate)
        )
    if args.raw:
        args.raw.write_text(raw)
    print("\n".join([*summarize(raw), "", *by_proxy_frame(raw)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
