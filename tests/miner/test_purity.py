"""The pure modules import nothing from aiohttp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PURE = (
    "segments", "formats", "prompt", "schema", "repair", "retry", "metrics", "outcome",
    "summary", "pool", "settings", "status",
)  # fmt: skip


def test_pure_modules_do_not_import_aiohttp() -> None:
    """Importing the pure modules (and the package) leaves aiohttp unimported."""
    code = "; ".join(
        [f"import miner.{name}" for name in PURE]
        + ["import sys", "assert 'aiohttp' not in sys.modules, 'aiohttp imported'"]
    )
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_samples_path_holds_the_bundled_corpus() -> None:
    """The bundled samples ship inside the package."""
    from miner import samples_path

    names = sorted(p.name for p in samples_path().iterdir())
    assert names == ["lecture.srt", "panel.vtt", "standup.md"]
