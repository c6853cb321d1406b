"""Scenario 5, fair share by work: an editor with long prompts beside a chat client, one class."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.contenders import SIM_MODEL, SimTiming, start_lanes, start_simhost
from bench.figures import fmt_ms, median
from bench.loadgen import LoadSpec
from bench.procs import run_json_module
from bench.report import Context, Section
from bench.work_share_figures import QUEUE_MS, Variant, VariantRun, client_run
from bench.work_share_report import render

__all__ = ["FULL", "SMOKE", "VARIANTS", "WorkPlan", "run"]

# The uncompressed timing model is the simulator's default: prefill 2,000 tokens/s, decode
# 40 tokens/s for one request (k decoding together: 40 * k**0.7). An editor request (8,000
# prompt tokens, 400 out) then holds a lane ~14 s, a chat request (200 in, 100 out) ~2.6 s;
# in served tokens (w_in 1, w_out 2) the editor's request is 8,800 against 400: 22 times.
PREFILL_TPS = 2000.0
DECODE_TPS = 40.0
BATCH_ALPHA = 0.7
NUM_CTX = 16384  # both clients send the same num_ctx, so Ollama never reloads between them
W_IN, W_OUT = 1.0, 2.0  # the proxy's defaults, used to count served tokens here too
PRIORITY = "normal"
AGING_DEFAULT_S = 30.0
AGING_OFF_S = 3600.0  # longer than any run: no ticket ages

VARIANTS = (
    Variant("requests", AGING_DEFAULT_S),
    Variant("tokens", AGING_DEFAULT_S),
    Variant("requests", AGING_OFF_S),
    Variant("tokens", AGING_OFF_S),
    Variant("tokens", AGING_OFF_S, (("chat", 2.0),)),
    Variant("requests", AGING_OFF_S, lanes=2),
    Variant("tokens", AGING_OFF_S, lanes=2),
)


@dataclass(frozen=True)
class WorkPlan:
    """Size of the scenario: compression, window, the clients' loops and requests."""

    scale: float  # every rate x scale, aging / scale
    window_s: float  # measured wall seconds per run
    concurrency: int  # requests each client keeps in flight
    lead_s: float  # the load generators' start-up time before the window opens
    editor_chars: int = 32_000  # ~8,000 tokens at 4 characters a token
    editor_predict: int = 400
    chat_chars: int = 800  # ~200 tokens
    chat_predict: int = 100


FULL = WorkPlan(scale=20.0, window_s=60.0, concurrency=3, lead_s=2.0)
SMOKE = WorkPlan(scale=400.0, window_s=1.5, concurrency=3, lead_s=4.0)


def _text(line: str, chars: int) -> str:
    """`line` with a counter, repeated and cut to exactly `chars` characters."""
    text = ""
    index = 0
    while len(text) < chars:
        text += line.format(index)
        index += 1
    return text[:chars]


def _specs(plan: WorkPlan, url: str, start_at: float, until: float) -> dict[str, LoadSpec]:
    """The editor (`/api/generate`, long prompt) and chat (`/api/chat`) closed loops."""
    editor: dict[str, Any] = {
        "model": SIM_MODEL,
        "prompt": _text(
            "def step_{0}(state):\n    return state + {0}  # keep\n", plan.editor_chars
        ),
        "options": {"num_predict": plan.editor_predict, "num_ctx": NUM_CTX},
    }
    question = _text("Why is lane {0} of the queue fair to every client? ", plan.chat_chars)
    chat: dict[str, Any] = {
        "model": SIM_MODEL,
        "messages": [{"role": "user", "content": question}],
        "options": {"num_predict": plan.chat_predict, "num_ctx": NUM_CTX},
    }
    bodies = {"editor": ("/api/generate", editor), "chat": ("/api/chat", chat)}
    return {
        client: LoadSpec(
            url=url,
            path=path,
            body=body,
            headers={"X-Lanes-Client": client, "X-Lanes-Priority": PRIORITY},
            concurrency=plan.concurrency,
            requests=1_000_000,
            start_at=start_at,
            until=until,
            keep_headers=[QUEUE_MS],
        )
        for client, (path, body) in bodies.items()
    }


def _timing(plan: WorkPlan, lanes: int) -> SimTiming:
    return SimTiming(
        lanes=lanes,
        prefill_tps=PREFILL_TPS * plan.scale,
        decode_tps=DECODE_TPS * plan.scale,
        batch_alpha=BATCH_ALPHA,
    )


async def _one_run(variant: Variant, plan: WorkPlan, ctx: Context) -> VariantRun:
    """A fresh simulator and proxy; both clients' loops for the window; their figures."""
    lanes = variant.lanes
    sim = await start_simhost(_timing(plan, lanes), ctx.tmp)
    try:
        proxy = await start_lanes(sim.url, ctx.tmp, lanes=lanes, extra=variant.flags(plan.scale))
        try:
            start_at = time.monotonic() + plan.lead_s
            until = start_at + plan.window_s
            specs = _specs(plan, proxy.url, start_at, until)
            limit = plan.lead_s + plan.window_s + 300
            jobs = [run_json_module("bench.loadgen", asdict(s), limit) for s in specs.values()]
            results: list[dict[str, Any]] = list(await asyncio.gather(*jobs))
        finally:
            await proxy.stop()
    finally:
        await sim.stop()
    run = VariantRun(variant)
    for client, result in zip(specs, results, strict=True):
        if result["starts"] and result["starts"][0] > start_at + 0.5:
            ctx.log(f"work share: {client} started late; give the load generators more lead")
        aging_s = variant.aging_s / plan.scale
        run.clients[client] = client_run(client, result, until, (W_IN, W_OUT), aging_s)
    return run


async def run(ctx: Context) -> Section:
    """Run scenario 5 and return its section."""
    begin = time.monotonic()
    plan = SMOKE if ctx.smoke else FULL
    runs: list[VariantRun] = []
    if ctx.smoke:  # smoke numbers mean nothing, so the runs may share the machine
        runs = list(await asyncio.gather(*(_one_run(v, plan, ctx) for v in VARIANTS)))
    for variant in VARIANTS if not ctx.smoke else ():
        ctx.log(f"work share: {variant.label}")
        runs.append(await _one_run(variant, plan, ctx))
    section = Section("work_share", "5. Fair share by work: a long-prompt editor beside a chat")
    render(section, runs, _intro(plan, runs), plan.concurrency)
    section.data = {
        "plan": asdict(plan),
        "runs": [
            {"variant": asdict(r.variant), "clients": {k: asdict(c) for k, c in r.clients.items()}}
            for r in runs
        ],
    }
    section.seconds = time.monotonic() - begin
    return section


def _service(runs: list[VariantRun], client: str) -> str:
    return fmt_ms(median([r.clients[client].service_p50_s for r in runs]), 0)


def _intro(plan: WorkPlan, runs: list[VariantRun]) -> list[str]:
    """What was run, in words (the numbers' meaning follows the tables)."""
    one = [r for r in runs if r.variant.lanes == 1] or runs
    return [
        "`lanes serve --lanes N` in front of a simulator with N slots "
        "(`OLLAMA_NUM_PARALLEL=N`; N = 1 unless a column says 2), prefill "
        f"{PREFILL_TPS:,.0f} tokens/s and decode {DECODE_TPS:g} tokens/s per request (batch "
        f"alpha {BATCH_ALPHA}), every rate × {plan.scale:g}: time is compressed "
        f"{plan.scale:g}×, and `--aging-s` is divided likewise, so *aging 30 s* is the default "
        f"({AGING_DEFAULT_S / plan.scale:g} s here) and *aging {AGING_OFF_S:g} s* never fires "
        f"within a run. Two clients in the `{PRIORITY}` class keep {plan.concurrency} requests "
        f"each in flight (closed loop) for {plan.window_s:g} s per run: an **editor** "
        f"(`X-Lanes-Client: editor`, `/api/generate`, {plan.editor_chars:,}-character prompts "
        f"≈ {plan.editor_chars // 4:,} tokens, {plan.editor_predict} output tokens) and a "
        f"**chat** (`/api/chat`, {plan.chat_chars}-character prompts ≈ "
        f"{plan.chat_chars // 4} tokens, {plan.chat_predict} output tokens). On one lane an "
        f"editor request holds it {_service(one, 'editor')} and a chat request "
        f"{_service(one, 'chat')} (medians of Ollama's load + prompt-eval + eval durations). "
        f"*Served tokens* = {W_IN:g} × prompt + {W_OUT:g} × output tokens (the defaults of "
        "`w_in` and `w_out`), from each answer's final `prompt_eval_count` and `eval_count`; "
        "only requests that ended inside the window count. *Wait* is the proxy's "
        "`X-Lanes-Queue-Ms`, *total* the client's whole latency. Each run has a fresh "
        "simulator and proxy.",
    ]
