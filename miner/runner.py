"""A whole run: read inputs, register segments, mine pending ones through the pool, summarize."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from miner.client import LanesClient
from miner.extractor import Extractor
from miner.formats import InputError, discover, read_source
from miner.outcome import DONE_STATUSES, Outcome
from miner.pool import run_pool
from miner.progress import ProgressBar
from miner.prompt import fit_warnings, prompt_version
from miner.retry import RetryPolicy
from miner.segments import Budget, Segment, segment_turns
from miner.settings import MinerSettings
from miner.store import Store
from miner.summary import RunSummary, lane_report, summarize, verdict_report

__all__ = ["RunSummary", "load_inputs", "run_miner", "samples_path"]

log = structlog.get_logger("miner")


def samples_path() -> Path:
    """The folder of the bundled sample transcripts (what `lanes demo` mines)."""
    return Path(__file__).resolve().parent / "samples"


def load_inputs(
    store: Store, inputs: Sequence[Path], budget: Budget
) -> tuple[list[str], list[str]]:
    """Read, segment and register every input file; returns (source ids, per-file errors)."""
    files, errors = discover(list(inputs))
    sources: list[str] = []
    for path in files:
        try:
            parsed = read_source(path)
        except InputError as exc:
            errors.append(str(exc))
            log.warning("input_skipped", path=str(path), error=str(exc))
            continue
        source_id = str(path)
        segments = segment_turns(source_id, parsed.turns, budget, merge_turns=parsed.merge_turns)
        store.add_source(source_id, str(path), parsed.format, segments)
        sources.append(source_id)
    return sources, errors


def _headers(settings: MinerSettings) -> dict[str, str]:
    """Who the miner is to the proxy, and its token when the proxy needs one."""
    found = {"X-Lanes-Client": settings.client, "X-Lanes-Priority": settings.priority}
    if settings.token is not None:
        found["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
    return found


def _client(settings: MinerSettings) -> LanesClient:
    return LanesClient(
        settings.url,
        api=settings.api,
        headers=_headers(settings),
        policy=RetryPolicy(
            attempts=settings.retry_attempts,
            base_s=settings.retry_base_s,
            max_s=settings.retry_max_s,
            budget_s=settings.retry_budget_s,
        ),
        timeout_s=settings.timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
        max_connections=settings.workers + 4,
    )


async def run_miner(
    settings: MinerSettings,
    inputs: Sequence[Path],
    *,
    requeue_failed: bool = False,
    progress_stream: TextIO | None = None,
) -> RunSummary:
    """Mine every pending segment of `inputs` (all pending segments in the db when `inputs`
    is empty) and return the summary. Finished segments are committed one by one, so a
    cancelled or killed run loses nothing that finished; a rerun skips finished segments."""
    store = await asyncio.to_thread(Store, settings.db)
    try:
        return await _run(store, settings, inputs, requeue_failed, progress_stream)
    finally:
        await asyncio.to_thread(store.close)


@dataclass(frozen=True)
class _Plan:
    """What a run will mine, and what it found already done or failed."""

    jobs: list[Segment]
    skipped: int
    earlier_failed: int
    input_errors: list[str]
    warnings: list[str]


async def _plan(
    store: Store, settings: MinerSettings, inputs: Sequence[Path], requeue_failed: bool
) -> _Plan:
    """Register the inputs and list the pending segments (in a thread: SQLite blocks)."""
    budget = Budget(settings.segment_min_tokens, settings.segment_max_tokens)
    sources: list[str] | None = None
    errors: list[str] = []
    if inputs:
        sources, errors = await asyncio.to_thread(load_inputs, store, inputs, budget)
    if requeue_failed:
        await asyncio.to_thread(store.requeue_failed)
    jobs: list[Segment] = await asyncio.to_thread(store.segments, sources, ["pending"])
    counts = await asyncio.to_thread(store.count, sources)
    warnings: list[str] = []
    if jobs:
        largest = max(jobs, key=lambda s: len(s.text))
        warnings = fit_warnings(largest, num_ctx=settings.num_ctx, num_predict=settings.num_predict)
        for text in warnings:
            log.warning("context_too_small", detail=text)
    return _Plan(
        jobs,
        skipped=sum(counts.get(s, 0) for s in DONE_STATUSES),
        earlier_failed=counts.get("failed", 0),
        input_errors=errors,
        warnings=warnings,
    )


async def _run(
    store: Store,
    settings: MinerSettings,
    inputs: Sequence[Path],
    requeue_failed: bool,
    progress_stream: TextIO | None,
) -> RunSummary:
    plan = await _plan(store, settings, inputs, requeue_failed)
    if not plan.jobs:
        return RunSummary(
            segments=0,
            skipped=plan.skipped,
            earlier_failed=plan.earlier_failed,
            input_errors=plan.input_errors,
        )
    run_id = await asyncio.to_thread(
        store.start_run,
        command="retry-failed" if requeue_failed else "run",
        model=settings.model,
        api=settings.api,
        url=settings.url,
        prompt_version=prompt_version(),
        num_ctx=settings.num_ctx,
        workers=settings.workers,
    )
    enabled = settings.progress if settings.progress is not None else _is_tty(progress_stream)
    return await _mine(
        store,
        settings,
        plan,
        run_id,
        ProgressBar(len(plan.jobs), enabled=enabled, stream=progress_stream),
    )


async def _mine(
    store: Store, settings: MinerSettings, plan: _Plan, run_id: int, progress: ProgressBar
) -> RunSummary:
    """Mine the plan's segments through the pool, committing each; record how the run ended."""
    outcomes: list[Outcome] = []
    started = time.monotonic()
    async with _client(settings) as client:

        def summary_of(done: Sequence[Outcome], **extra: Any) -> RunSummary:
            return summarize(
                done,
                wall_s=time.monotonic() - started,
                retries=client.retries,
                skipped=plan.skipped,
                earlier_failed=plan.earlier_failed,
                input_errors=plan.input_errors,
                warnings=plan.warnings,
                **extra,
            )

        before = await client.proxy_stats()
        extractor = Extractor(client, settings)
        with progress as bar:

            async def handle(segment: Segment) -> Outcome:
                outcome = await extractor(segment)
                await asyncio.to_thread(store.commit, outcome, run_id)
                outcomes.append(outcome)
                if outcome.status == "failed":
                    log.warning(
                        "segment_failed",
                        segment_id=segment.segment_id,
                        source=segment.source_id,
                        error=outcome.error,
                    )
                bar.advance(outcome, client.retries)
                return outcome

            try:
                ordered = await run_pool(plan.jobs, handle, workers=settings.workers)
            except BaseException as exc:
                stopped = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
                summary = summary_of(outcomes, interrupted=True)
                await asyncio.shield(
                    asyncio.to_thread(
                        store.finish_run,
                        run_id,
                        "interrupted" if stopped else "error",
                        summary.as_dict(),
                    )
                )
                raise
        after = await client.proxy_stats()
    summary = summary_of(
        ordered,
        lanes=lane_report(before, after),
        verdict=verdict_report(after),
        stats_url=client.base_url + "/stats",
    )
    status = "ok" if summary.all_ok else "partial"
    await asyncio.to_thread(store.finish_run, run_id, status, summary.as_dict())
    return summary


def _is_tty(stream: TextIO | None) -> bool:
    target = stream if stream is not None else sys.stderr
    return bool(getattr(target, "isatty", lambda: False)())
