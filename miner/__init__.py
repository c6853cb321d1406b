"""miner: the bundled batch client that mines transcript segments through ollama-lanes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from typing import TextIO

    from miner.runner import RunSummary
    from miner.settings import MinerSettings

__all__ = ["__version__", "run_miner", "samples_path"]

__version__ = "0.1.0"


def samples_path() -> Path:
    """The folder of the bundled sample transcripts (what `lanes demo` mines)."""
    from miner.runner import samples_path as _samples_path

    return _samples_path()


async def run_miner(
    settings: MinerSettings,
    inputs: Sequence[Path],
    *,
    requeue_failed: bool = False,
    progress_stream: TextIO | None = None,
) -> RunSummary:
    """Mine `inputs` (files or folders) into `settings.db`; see `miner.runner.run_miner`."""
    from miner.runner import run_miner as _run

    return await _run(
        settings, inputs, requeue_failed=requeue_failed, progress_stream=progress_stream
    )
