"""`lanes top`: one rich frame from a `/stats` document, and the live loop that refreshes it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

import aiohttp
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from proxy.stats.client import StatsUnavailable, fetch_queue, fetch_stats
from proxy.stats.tables import render_verdict

__all__ = ["bar", "render_frame", "run_top"]

_FULL, _EMPTY = "█", "░"
QUEUE_ROWS = 8  # waiting requests shown; /queue lists them all


def bar(fraction: float, cells: int) -> str:
    """A bar of `cells` characters, `fraction` (0 to 1) of them full."""
    fraction = min(1.0, max(0.0, fraction))
    full = round(fraction * cells)
    return _FULL * full + _EMPTY * (cells - full)


def _seconds(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000.0:.1f} s"


def _counts(table: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in table.items()) or "-"


def _header(doc: dict[str, Any]) -> Text:
    up = doc["upstream"]
    state = f"Ollama {up['version'] or '?'}" if up["reachable"] else "NOT REACHABLE"
    lanes = doc["lanes"]
    text = Text()
    text.append(f"ollama-lanes {doc['version']}", style="bold")
    text.append(f"  up {doc['uptime_s']:.0f} s  upstream {up['url']} ({state})\n")
    text.append(f"lanes {lanes['busy']}/{lanes['configured']} busy", style="bold")
    q = doc["queue"]
    text.append(f"   queue {q['depth']}/{q['max_queue']}", style="bold")
    text.append(f"   oldest wait {_seconds(q['oldest_wait_ms'])}")
    return text


def _lanes(doc: dict[str, Any], width: int) -> Table:
    """One row per held lane (by host, model, lane number), then one per free lane."""
    held = sorted(doc["lanes"]["running"], key=lambda r: (r["upstream"], r["model"], r["lane"]))
    longest = max((row["elapsed_ms"] for row in held), default=0.0) or 1.0
    cells = max(6, min(24, width - 88))
    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False)
    for name in ("lane", "busy", "client", "class", "model", "route", "elapsed", "tokens"):
        table.add_column(name, justify="right" if name in ("lane", "elapsed", "tokens") else "left")
    for row in held:
        table.add_row(
            str(row["lane"]),
            bar(row["elapsed_ms"] / longest, cells),
            row["client"],
            row["priority"],
            row["model"],
            row["route"],
            _seconds(row["elapsed_ms"]),
            str(row["tokens"]),
        )
    for _ in range(max(0, doc["lanes"]["configured"] - len(held))):
        table.add_row("-", _EMPTY * cells, "idle", "", "", "", "", "", style="dim")
    return table


def _lane_map(doc: dict[str, Any]) -> Text:
    """Per host: NUM_PARALLEL and where it was read, then each model's busy/lanes and why."""
    text = Text()
    for name, host in (doc.get("upstreams") or {}).items():
        if not host.get("models"):
            continue
        known = host["num_parallel"]
        parallel = f"NUM_PARALLEL {known if known is not None else '?'}"
        mode = f"lanes {host['cap']} set by hand" if host["cap"] is not None else parallel
        text.append(f"lane map   {name} ({mode}, {host['num_parallel_source']}): ", style="bold")
        parts = []
        for model, row in host["models"].items():
            part = f"{model} {row['busy']}/{row['lanes']} {row['source']}"
            if row["ollama_lanes"] < row["lanes"]:
                part += f" (Ollama runs {row['ollama_lanes']}: {row['ollama_source']})"
            parts.append(part)
        text.append(" · ".join(parts) + "\n")
    return text


def _numbers(doc: dict[str, Any], width: int) -> Text:
    q, t, u, c = doc["queue"], doc["tokens"], doc["utilization"], doc["counters"]
    lat = doc["latency"]
    cells = max(10, min(30, width - 50))
    text = Text()
    text.append(f"queue by class   {_counts(q['by_class'])}\n")
    text.append(f"queue by client  {_counts(q['by_client'])}\n")
    text.append(
        f"tokens/s         output {t['output_tokens_per_s_1m']:.1f} (1m) "
        f"{t['output_tokens_per_s_5m']:.1f} (5m)   prefill {t['prefill_tokens_per_s'] or '-'}"
        f"   decode {t['decode_tokens_per_s'] or '-'}\n"
    )
    for window in ("1m", "5m"):
        ratio = u[f"busy_ratio_{window}"]
        text.append(f"utilization {window}   {bar(ratio, cells)} {ratio * 100:5.1f}%\n")

    def p(name: str) -> str:
        v = lat[name]
        return "/".join("-" if v[k] is None else f"{v[k]:.0f}" for k in ("p50", "p95", "p99"))

    text.append(
        f"latency ms       wait {p('queue_wait_ms')}   first byte {p('first_byte_ms')}"
        f"   total {p('total_ms')}  (p50/p95/p99)\n"
    )
    text.append(
        f"requests         received {c['received']}  completed {c['completed']}"
        f"  failed {c['failed']}  rejected {c['rejected']}  cancelled "
        f"{c['cancelled_while_queued'] + c['cancelled_while_running']}"
        f"  upstream errors {c['upstream_errors']}"
    )
    return text


def _warnings(doc: dict[str, Any]) -> Text:
    text = Text()
    if not doc["warnings"]:
        text.append("no warnings", style="green")
    for i, w in enumerate(doc["warnings"]):
        if i:
            text.append("\n")
        text.append(f"! {w['kind']} x{w['count']}: ", style="bold red")
        text.append(f"{w['latest']}\n")
        text.append(f"  hint: {w['hint']}", style="italic")
    return text


def _hosts(doc: dict[str, Any]) -> Text:
    """One line per upstream host, shown only when there are several."""
    hosts: dict[str, dict[str, Any]] = doc.get("upstreams") or {}
    text = Text()
    if len(hosts) < 2:
        return text
    for name, h in hosts.items():
        state = "" if h["healthy"] else "  DOWN"
        text.append(f"host {name:<11} {h['busy']}/{h['lanes']} busy", style="bold")
        text.append(f"  requests {h['requests']}  swaps {h['swaps']}  errors {h['errors']}")
        text.append(f"{state}\n", style="bold red")
    return text


def _waiting(queue: dict[str, Any] | None, limit: int = QUEUE_ROWS) -> RenderableType:
    """The first `limit` waiting requests of `/queue`, in the order they should start."""
    if not queue or not queue["waiting"]:
        return Text()
    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, title_justify="left")
    for name in ("#", "client", "class", "in class", "model", "waited", "starts in"):
        table.add_column(name, justify="left" if name in ("client", "class", "model") else "right")
    for row in queue["waiting"][:limit]:
        klass = row["klass"] if row["klass"] == row["priority"] else f"{row['klass']} (aged)"
        table.add_row(
            str(row["position"]),
            row["client"],
            klass,
            str(row["position_in_class"]),
            row["model"],
            _seconds(row["waited_ms"]),
            f"~{_seconds(row['eta_ms'])}",
        )
    more = len(queue["waiting"]) - limit
    if more > 0:
        table.caption = f"... and {more} more (GET /queue lists all)"
    return table


def render_frame(
    stats: dict[str, Any], width: int, queue: dict[str, Any] | None = None
) -> RenderableType:
    """One `lanes top` frame for a terminal `width` columns wide (pure: no clock, no I/O); its
    first line is the verdict; `queue` is a `/queue` document, shown as the next to start."""
    return Group(
        render_verdict(stats),
        _header(stats),
        _lanes(stats, width),
        _waiting(queue),
        _lane_map(stats),
        _numbers(stats, width),
        _hosts(stats),
        _warnings(stats),
    )


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    """Read keys one by one (no Enter needed) and restore the terminal afterwards."""
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _loop(url: str, token: str | None, console: Console, quit_: asyncio.Event) -> None:
    """Fetch and draw a frame a second: in place on a terminal, one after another otherwise."""
    live = Live(console=console, auto_refresh=False, screen=True) if console.is_terminal else None
    with live if live is not None else contextlib.nullcontext():
        async with aiohttp.ClientSession() as session:
            while not quit_.is_set():
                try:
                    doc = await fetch_stats(url, token=token, session=session, timeout_s=2.0)
                    queue = await fetch_queue(url, token=token, session=session, timeout_s=2.0)
                    frame = render_frame(doc, console.width, queue)
                except (StatsUnavailable, KeyError, TypeError) as exc:
                    frame = Text(f"waiting for {url}/stats: {exc}  (q to quit)")
                if live is not None:
                    live.update(frame, refresh=True)
                else:
                    console.print(frame, "")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(quit_.wait(), 1.0)


async def run_top(url: str, *, token: str | None = None, console: Console | None = None) -> None:
    """Refresh once a second until `q` is pressed (on a TTY) or the task is cancelled."""
    console = console or Console()
    quit_ = asyncio.Event()
    stdin = sys.stdin
    if not (stdin is not None and stdin.isatty() and os.name == "posix"):
        await _loop(url, token, console, quit_)
        return
    fd = stdin.fileno()
    loop = asyncio.get_running_loop()

    def on_key() -> None:
        if b"q" in os.read(fd, 64).lower():
            quit_.set()

    with _cbreak(fd):
        loop.add_reader(fd, on_key)
        try:
            await _loop(url, token, console, quit_)
        finally:
            loop.remove_reader(fd)
