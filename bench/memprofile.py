"""What a waiting request costs in memory: `python -m bench.memprofile [--held N]`.

The proxy (`lanes serve --lanes 1`, its lane held by one endless request) and the floor
(bench/floor.py, whose requests all wait upstream in the simulator's queue) each run in a
child process with tracemalloc on. Both get a warm-up batch, a snapshot, then N held requests
from a load-generator process and a second snapshot: the RSS growth per held request, the
Python bytes per held request, and the allocation sites that hold them (tracemalloc, by line),
printed as Markdown. The floor's figure is its bytes per held connection (issue 16).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path

from bench.contenders import SimTiming, start_simulator
from bench.holders import QUIET_PROXY, hold_requests, release
from bench.procs import Service, free_port, python_argv, start_service, stop_all

__all__ = ["Held", "main"]

_FRAMES = 8  # frames kept per allocation; the report groups by the innermost line


@dataclass(frozen=True)
class Held:
    """One process holding `count` waiting requests: RSS and Python bytes they added."""

    name: str
    count: int
    rss_bytes: int
    traced_bytes: int
    top: list[tuple[str, int, int]]  # (site, bytes, allocations), largest first


def _child(kind: str, port: int, upstream: str, out: Path, traced: bool) -> None:
    """The process under study (tracemalloc from the start if `traced`): on each SIGUSR1 a
    full collection, then a snapshot."""
    if traced:
        tracemalloc.start(_FRAMES)
    taken = [0]

    def snapshot(*_: object) -> None:
        taken[0] += 1
        gc.collect()
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(str(out.with_suffix(f".{taken[0]}")))
        out.with_suffix(f".{taken[0]}.done").touch()

    signal.signal(signal.SIGUSR1, snapshot)
    if kind == "floor":
        from bench import floor

        sys.argv = ["floor", str(port), upstream]
        floor.main()
        return
    from proxy.__main__ import main as lanes_main

    sys.exit(
        lanes_main(
            ["serve", f"--listen=127.0.0.1:{port}", f"--upstream={upstream}", "--lanes=1",
             "--max-queue=100000", "--log-level=warning", *QUIET_PROXY]
        )
    )  # fmt: skip


async def _snapshot(service: Service, out: Path, number: int) -> tracemalloc.Snapshot | None:
    """Have the child collect and (when traced) snapshot; returns the snapshot, if any."""
    service.process.send_signal(signal.SIGUSR1)
    done = out.with_suffix(f".{number}.done")
    deadline = time.monotonic() + 120
    while not done.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} wrote no snapshot {number}")
        await asyncio.sleep(0.1)
    path = out.with_suffix(f".{number}")
    return tracemalloc.Snapshot.load(str(path)) if path.exists() else None


def _open_files(service: Service) -> int:
    try:
        return len(os.listdir(f"/proc/{service.process.pid}/fd"))
    except OSError:
        return 0


async def _settled(service: Service, files: int = 0) -> None:
    """Wait until the process holds at least `files` open files and is idle (< 2% of a core
    over 0.5 s): a connection refused by a full accept queue is retried by the client after
    a second or more, which an idle check alone would miss."""
    last = service.cpu()
    for _ in range(600):
        await asyncio.sleep(0.5)
        now = service.cpu()
        if now - last < 0.01 and _open_files(service) >= files:
            return
        last = now
    raise RuntimeError(f"{service.name} never went idle with {files} files open")


async def measure(
    kind: str, sim: Service, tmp: Path, held: int, *, traced: bool, top: int = 25
) -> Held:
    """Hold `held` requests through `kind` ("lanes serve" or "floor"): the RSS they add, and
    with `traced` the Python bytes and their sites (tracemalloc's own memory inflates RSS, so
    RSS is read from an untraced run)."""
    port = free_port()
    out = tmp / f"{kind.replace(' ', '-')}-{int(traced)}.snap"
    argv = python_argv(
        "-m", "bench.memprofile", "--child", kind, str(port), sim.url, str(out), str(int(traced))
    )
    (tmp / "empty.toml").touch()
    env = {"LANES_CONFIG": str(tmp / "empty.toml"), "PYTHONUNBUFFERED": "1"}
    ready = "/stats" if kind == "lanes serve" else "/api/version"
    service = await start_service(kind, argv, port=port, log_dir=tmp, ready_path=ready, env=env,
                                  limit_s=120)  # fmt: skip
    holders = []
    try:
        if kind == "lanes serve":  # its one lane taken, so every later request waits in it
            holders.append(await hold_requests(service.url, 1))
        await _settled(service)
        before, rss0 = await _snapshot(service, out, 1), service.rss()
        files = _open_files(service) + held  # one socket per held request, at least
        holders.append(await hold_requests(service.url, held))
        await _settled(service, files)
        after, rss1 = await _snapshot(service, out, 2), service.rss()
    finally:
        await release(holders)
        await service.stop()
    if before is None or after is None:
        return Held(kind, held, rss1 - rss0, 0, [])
    diff = after.compare_to(before, "lineno")
    rows = [(_site(d.traceback[0]), d.size_diff, d.count_diff) for d in diff[:top]]
    return Held(kind, held, rss1 - rss0, sum(d.size_diff for d in diff), rows)


def _site(frame: tracemalloc.Frame) -> str:
    """`file:line`, relative to site-packages, the standard library or this repository."""
    name = frame.filename.split("site-packages/")[-1]
    name = name.removeprefix(str(Path(__file__).resolve().parent.parent) + "/")
    if "/lib/python3" in name:
        name = "stdlib/" + name.split("/lib/python3", 1)[1].split("/", 1)[1]
    return f"{name}:{frame.lineno}"


def _markdown(found: list[Held]) -> list[str]:
    lines = ["| process | held | RSS per held request | Python bytes per held request |",
             "|---|---|---|---|"]  # fmt: skip
    for h in found:
        lines.append(f"| {h.name} | {h.count:,} | {h.rss_bytes / h.count / 1e3:.1f} KB | "
                     f"{h.traced_bytes / h.count / 1e3:.1f} KB |")  # fmt: skip
    for h in found:
        lines += ["", f"**{h.name}: where the Python bytes of a held request are** (tracemalloc, "
                  "innermost line; bytes and allocations per held request)", "",
                  "| site | bytes | allocations |", "|---|---|---|"]  # fmt: skip
        lines += [f"| `{site}` | {size / h.count:.0f} | {count / h.count:.2f} |"
                  for site, size, count in h.top]  # fmt: skip
    return lines


async def _run(held: int) -> list[Held]:
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        sim = await start_simulator(SimTiming(lanes=1, decode_tps=1.0), tmp)
        try:
            blocker = await hold_requests(sim.url, 1)  # the simulator's only slot, for good
            found = []
            for kind in ("floor", "lanes serve"):
                untraced = await measure(kind, sim, tmp, held, traced=False)
                traced = await measure(kind, sim, tmp, held, traced=True)
                found.append(replace(traced, rss_bytes=untraced.rss_bytes))
            await release([blocker])
            return found
        finally:
            await stop_all()


def main(argv: list[str] | None = None) -> int:
    """Measure and print the Markdown report (or, with --child, be the process measured)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        _child(args[1], int(args[2]), args[3], Path(args[4]), args[5] == "1")
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.memprofile", description=__doc__)
    parser.add_argument("--held", type=int, default=2000, help="requests held at once")
    options = parser.parse_args(args)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    print("\n".join(_markdown(asyncio.run(_run(options.held)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
