"""The generic worker pool."""

from __future__ import annotations

import asyncio

import pytest

from miner.pool import run_pool


class _Recorder:
    """A handle that records its own peak concurrency."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.running = 0
        self.peak = 0
        self.started: list[int] = []
        self.fail_on = fail_on

    async def __call__(self, job: int) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.append(job)
        try:
            await asyncio.sleep(0.001 * (job % 3))
            if job == self.fail_on:
                raise RuntimeError("boom")
            return f"out-{job}"
        finally:
            self.running -= 1


class TestRunPool:
    async def test_peak_never_exceeds_workers(self) -> None:
        """At most `workers` handles run at once, and all of them are used."""
        handle = _Recorder()
        await run_pool(range(50), handle, workers=4)
        assert handle.peak == 4

    async def test_one_outcome_per_job_in_order(self) -> None:
        """Outcomes come back in job order, one each, though finishing out of order."""
        assert [f"out-{i}" for i in range(20)] == await run_pool(range(20), _Recorder(), workers=7)

    async def test_fewer_jobs_than_workers_and_none(self) -> None:
        """Small and empty job lists work."""
        assert await run_pool([0], _Recorder(), workers=12) == ["out-0"]
        assert await run_pool([], _Recorder(), workers=12) == []

    async def test_handle_error_propagates(self) -> None:
        """A raising handle stops the pool with that error."""
        with pytest.raises(ExceptionGroup) as info:
            await run_pool(range(10), _Recorder(fail_on=3), workers=2)
        assert info.group_contains(RuntimeError, match="boom")

    async def test_cancel_cancels_running_handles(self) -> None:
        """Cancelling the pool cancels in-flight handles and leaves none running."""
        running: list[int] = []
        cancelled: list[int] = []
        three = asyncio.Event()

        async def slow(job: int) -> int:
            running.append(job)
            if len(running) == 3:
                three.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                cancelled.append(job)
                raise
            return job

        task = asyncio.create_task(run_pool(range(10), slow, workers=3))
        await three.wait()  # no handle ever returns, so no worker can start a fourth job
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sorted(running) == sorted(cancelled) == [0, 1, 2]

    async def test_rejects_zero_workers(self) -> None:
        """Zero workers is a usage error."""
        with pytest.raises(ValueError, match="at least 1"):
            await run_pool([1], _Recorder(), workers=0)
