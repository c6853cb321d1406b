"""The load generator, run as its own process: `python -m bench.loadgen SPEC_JSON` prints JSON.

Modes: `closed` keeps `concurrency` requests in flight until `requests` are done (or, with
`until`, a `time.monotonic()` instant, until then: no request starts after it); `periodic`
sends one request every `interval_s` for `count` requests (the interactive client); `hold`
opens `requests` requests at once, prints one `launched` line and keeps them open until stdin
closes. `start_at` (a `time.monotonic()` instant, comparable across processes) delays the
measured requests, so that several generators start together. Times are measured here, never
in the process under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

__all__ = ["LoadResult", "LoadSpec", "main"]


@dataclass
class LoadSpec:
    """What to send, where, and how many at once."""

    url: str
    path: str = "/api/generate"
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    mode: str = "closed"
    concurrency: int = 1
    requests: int = 100
    warmup: int = 0
    interval_s: float = 1.0
    timeout_s: float = 600.0
    start_at: float = 0.0
    until: float = 0.0
    keep_headers: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    """Per-request samples (seconds), counts and the generator's own cost."""

    starts: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


_METRIC_KEYS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
_COUNT_KEYS = ("prompt_eval_count", "eval_count")


def _final_metrics(line: bytes) -> dict[str, float]:
    """Ollama's final durations (seconds) and token counts, from the answer's last line."""
    with contextlib.suppress(ValueError):
        doc = json.loads(line)
        if isinstance(doc, dict):
            durations = {k: float(doc[k]) / 1e9 for k in _METRIC_KEYS if k in doc}
            return durations | {k: float(doc[k]) for k in _COUNT_KEYS if k in doc}
    return {}


async def _one(session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult | None) -> None:
    start = time.monotonic()
    first = 0.0
    lines = 0
    last = b""
    try:
        async with session.post(spec.url + spec.path, json=spec.body, headers=spec.headers) as resp:
            status = str(resp.status)
            kept = {name: resp.headers[name] for name in spec.keep_headers if name in resp.headers}
            async for line in resp.content:
                if not first:
                    first = time.monotonic()
                if line.strip():
                    lines += 1
                    last = line
    except (aiohttp.ClientError, TimeoutError) as exc:
        if result is not None:
            result.errors.append(f"{type(exc).__name__}: {exc}"[:200])
        return
    end = time.monotonic()
    if result is None:
        return
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if status != "200":
        return
    result.starts.append(start)
    result.latencies.append(end - start)
    result.ttfb.append((first or end) - start)
    result.chunks.append(lines)
    result.metrics.append(_final_metrics(last))
    result.headers.append(kept)


async def _closed(session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult) -> None:
    remaining = [spec.warmup, spec.requests]

    async def worker(slot: int, sink: LoadResult | None) -> None:
        while remaining[slot] > 0 and not (slot and spec.until and time.monotonic() >= spec.until):
            remaining[slot] -= 1
            await _one(session, spec, sink)

    warm = min(spec.warmup, spec.concurrency)
    if warm:  # opens the connections and warms both ends; nothing recorded
        await asyncio.gather(*(worker(0, None) for _ in range(warm)))
    await asyncio.sleep(max(0.0, spec.start_at - time.monotonic()))
    begin = time.monotonic()
    await asyncio.gather(*(worker(1, result) for _ in range(spec.concurrency)))
    result.wall_s = time.monotonic() - begin


async def _periodic(session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult) -> None:
    begin = time.monotonic()
    tasks = []
    for index in range(spec.requests):
        await asyncio.sleep(max(0.0, begin + index * spec.interval_s - time.monotonic()))
        tasks.append(asyncio.create_task(_one(session, spec, result)))
    await asyncio.gather(*tasks)
    result.wall_s = time.monotonic() - begin


async def _hold(session: aiohttp.ClientSession, spec: LoadSpec, result: LoadResult) -> None:
    begin = time.monotonic()
    tasks = []
    for index in range(spec.requests):
        tasks.append(asyncio.create_task(_one(session, spec, None)))
        if index % 200 == 199:  # pace the connection storm to what a listen backlog accepts
            await asyncio.sleep(0.01)
    await asyncio.sleep(0)
    print(json.dumps({"event": "launched", "n": len(tasks)}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result.wall_s = time.monotonic() - begin


async def run_load(spec: LoadSpec) -> LoadResult:
    """Run one load pattern and return what the client saw."""
    result = LoadResult()
    cpu0 = time.process_time()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        modes = {"closed": _closed, "periodic": _periodic, "hold": _hold}
        await modes[spec.mode](session, spec, result)
    result.cpu_s = time.process_time() - cpu0
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the spec (JSON, first argument), run it, print the result as one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    spec = LoadSpec(**json.loads(args[0]))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    del soft
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        runner = asyncio.run
    result = runner(run_load(spec))
    print(json.dumps({"event": "result", **asdict(result)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
