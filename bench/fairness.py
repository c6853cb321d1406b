"""Scenario 3, fairness: the miner's 12 batch workers plus one interactive chat client."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import asdict, dataclass

from bench.chart import BarChart
from bench.contenders import SIM_MODEL, start_lanes, start_simhost
from bench.figures import fmt_ms, median, percentile
from bench.lanes_busy import realistic_timing, upstream_view
from bench.loadgen import LoadSpec
from bench.minerhost import copy_samples
from bench.procs import Service, run_json_module
from bench.report import Context, Section, Target, markdown_table
from bench.sampler import get_json, post_json

__all__ = ["FairRun", "run"]

# The miner pins num_ctx 8192; a chat client on the same model must send the same value,
# or Ollama reloads the model between them (ollama-api.md §6.5).
CHAT = {
    "model": SIM_MODEL,
    "messages": [{"role": "user", "content": "In one sentence: what is a lane?"}],
    "stream": False,
    "options": {"num_predict": 24, "num_ctx": 8192},
}
CHAT_HEADERS = {"X-Lanes-Client": "chat", "X-Lanes-Priority": "interactive"}


@dataclass
class FairRun:
    """One miner run with the interactive client beside it."""

    mode: str
    wait_p50_s: float
    wait_p95_s: float
    total_p50_s: float
    total_p95_s: float
    chats: int
    miner_seg_per_s: float
    service_p50_s: float


def _plan(smoke: bool) -> tuple[int, int, float, int, int, float]:
    """(lanes, rounds, time scale, sample copies, chats per run, seconds between chats)."""
    # 0.15 s at 50× is one chat every 7.5 s of real time, about half a miner request.
    return (2, 1, 400.0, 1, 4, 0.02) if smoke else (4, 2, 50.0, 4, 30, 0.15)


async def _one_run(mode: str, sim: Service, proxy: Service, ctx: Context, tag: str) -> FairRun:
    lanes, _, _, copies, chats, interval_s = _plan(ctx.smoke)
    inputs = ctx.tmp / "fair-inputs"
    if not inputs.exists():
        copy_samples(inputs, copies)
    await post_json(sim.url + "/_bench/timeline")
    url = proxy.url if mode == "proxy" else sim.url
    miner_spec: dict[str, object] = {
        "url": url,
        "model": SIM_MODEL,
        "workers": 12,
        "db": str(ctx.tmp / f"fair-{tag}.db"),
        "inputs": [str(inputs)],
    }
    miner = asyncio.create_task(run_json_module("bench.minerhost", miner_spec, limit_s=900))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not miner.done():  # until every slot is taken
        stats = await get_json(sim.url + "/_sim/stats")
        if stats["models"][SIM_MODEL]["in_flight"] >= lanes:
            break
        await asyncio.sleep(0.02)
    spec = LoadSpec(
        url=url,
        path="/api/chat",
        body=CHAT,
        headers=CHAT_HEADERS,
        mode="periodic",
        requests=chats,
        interval_s=interval_s,
    )
    chat = await run_json_module("bench.loadgen", asdict(spec), limit_s=600)
    summary = await miner
    keys = ("load_duration", "prompt_eval_duration", "eval_duration")
    latencies: list[float] = chat["latencies"]
    metrics: list[dict[str, float]] = chat["metrics"]
    waits = [
        lat - sum(m.get(k, 0.0) for k in keys) for lat, m in zip(latencies, metrics, strict=True)
    ]
    _, _, service = upstream_view((await get_json(sim.url + "/_bench/timeline"))["requests"], lanes)
    return FairRun(
        mode=mode,
        wait_p50_s=percentile(waits, 50),
        wait_p95_s=percentile(waits, 95),
        total_p50_s=percentile(latencies, 50),
        total_p95_s=percentile(latencies, 95),
        chats=len(latencies),
        miner_seg_per_s=float(summary["segments"]) / float(summary["wall_s"]),
        service_p50_s=service,
    )


async def run(ctx: Context) -> Section:
    """Run scenario 3 and return its section."""
    begin = time.monotonic()
    lanes, rounds, scale, _, _, _ = _plan(ctx.smoke)
    sim = await start_simhost(realistic_timing(lanes, scale), ctx.tmp)
    proxy = await start_lanes(sim.url, ctx.tmp, lanes=lanes)
    runs: list[FairRun] = []
    try:
        for round_no in range(rounds):
            order = ("direct", "proxy") if round_no % 2 == 0 else ("proxy", "direct")
            for mode in order:
                ctx.log(f"fairness: round {round_no + 1}, {mode}")
                runs.append(await _one_run(mode, sim, proxy, ctx, f"{mode}-{round_no}"))
    finally:
        await proxy.stop()
        await sim.stop()
    section = Section("fairness", "3. Fairness: an interactive client beside the miner")
    _render(section, runs, lanes, scale)
    section.seconds = time.monotonic() - begin
    return section


def _mid(runs: list[FairRun], mode: str, attr: str) -> float:
    return median([float(getattr(r, attr)) for r in runs if r.mode == mode])


def _render(section: Section, runs: list[FairRun], lanes: int, scale: float) -> None:
    service = median([r.service_p50_s for r in runs])
    section.body = [
        f"{lanes} lanes, the scenario 2 timing model ({scale:.0f}× compressed). The miner runs "
        "12 workers with `X-Lanes-Priority: batch`; once every slot is busy, one chat client "
        "(`X-Lanes-Priority: interactive`, 24 output tokens) sends a request about every half "
        "miner request. *Wait* is the chat's total latency less the load, prompt-eval and "
        "eval durations Ollama reports: the time it spent queued, in the proxy or in Ollama's "
        f"FIFO. One lane's service time (median slot occupancy): {fmt_ms(service, 0)}.",
        "",
    ]
    header = ["path", "chat wait p50", "chat wait p95", "chat total p50", "chat total p95",
              "wait p95 / service", "miner seg/s", "chats"]  # fmt: skip
    rows = []
    for mode in ("direct", "proxy"):
        p95 = _mid(runs, mode, "wait_p95_s")
        rows.append([
            "direct (Ollama FIFO)" if mode == "direct" else "through lanes serve",
            fmt_ms(_mid(runs, mode, "wait_p50_s"), 0), fmt_ms(p95, 0),
            fmt_ms(_mid(runs, mode, "total_p50_s"), 0), fmt_ms(_mid(runs, mode, "total_p95_s"), 0),
            f"{p95 / service:.2f}" if service > 0 else "—",
            f"{_mid(runs, mode, 'miner_seg_per_s'):.2f}",
            str(sum(r.chats for r in runs if r.mode == mode)),
        ])  # fmt: skip
    section.body += markdown_table(header, rows)
    section.charts = [
        (
            "fairness-chat-wait.png",
            BarChart(
                "Interactive chat wait beside the miner (ms, time-compressed)",
                "ms",
                ["wait p50", "wait p95"],
                [
                    (mode, [_mid(runs, mode, k) * 1000 for k in ("wait_p50_s", "wait_p95_s")])
                    for mode in ("direct", "proxy")
                ],
            ),
        )
    ]
    p95 = _mid(runs, "proxy", "wait_p95_s")
    ratio = p95 / service if service > 0 else math.nan
    direct = _mid(runs, "direct", "wait_p95_s")
    section.headline = [
        f"Interactive chat beside the miner: p95 wait {fmt_ms(p95, 0)} through the proxy "
        f"({ratio:.2f} × one request's service time) vs {fmt_ms(direct, 0)} in Ollama's FIFO."
    ]
    section.targets = [
        Target(
            "interactive p95 wait under miner load ≤ 1.5 × one lane's service time",
            f"{fmt_ms(p95, 0)} = {ratio:.2f} × {fmt_ms(service, 0)}",
            None if math.isnan(ratio) else ratio <= 1.5,
        )
    ]
    section.data = {"runs": [asdict(r) for r in runs], "lanes": lanes, "scale": scale}
