"""The live progress bar on stderr: done/total, seg/s, output tok/s, failures and retries."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from miner.outcome import Outcome

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar, or nothing at all when disabled (not a terminal, or asked not to)."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.output_tokens = 0
        self._started = time.monotonic()
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("mining"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rates]}"),
                TextColumn("[red]{task.fields[failed]} failed[/] {task.fields[retries]} retries"),
                TimeElapsedColumn(),
                console=Console(file=stream, stderr=stream is None),
                transient=False,
            )
            self._task = self._progress.add_task(
                "mining", total=total, rates="", failed=0, retries=0
            )

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, outcome: Outcome, retries: int) -> None:
        """One segment finished; `retries` is the running total across the run."""
        self.done += 1
        self.failed += outcome.status == "failed"
        self.output_tokens += outcome.metrics.eval_count or 0
        if self._progress is None:
            return
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rates = f"{self.done / elapsed:.2f} seg/s {self.output_tokens / elapsed:,.0f} tok/s"
        self._progress.update(
            self._task, advance=1, rates=rates, failed=self.failed, retries=retries
        )
