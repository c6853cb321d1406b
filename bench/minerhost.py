"""The miner as its own process: `python -m bench.minerhost SPEC_JSON` prints its summary as JSON.

The spec names the inputs, URL, model, workers, database and priority; everything else is
the miner's default. The miner's own `RunSummary` gives segments and wall time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from miner import run_miner, samples_path
from miner.settings import MinerSettings

__all__ = ["copy_samples", "main"]


def copy_samples(folder: Path, copies: int) -> list[Path]:
    """`copies` copies of each bundled sample transcript in `folder` (distinct source ids)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for sample in sorted(samples_path().iterdir()):
        if not sample.is_file() or sample.name.startswith("."):
            continue
        for index in range(copies):
            target = folder / f"{sample.stem}-{index:03d}{sample.suffix}"
            shutil.copyfile(sample, target)
            made.append(target)
    return made


async def _mine(spec: dict[str, Any]) -> dict[str, Any]:
    settings = MinerSettings(
        url=spec["url"],
        model=spec["model"],
        workers=int(spec.get("workers", 12)),
        db=Path(spec["db"]),
        priority=spec.get("priority", "batch"),
        client=spec.get("client", "miner"),
        progress=False,
        log_level="error",
    )
    begin = time.monotonic()
    summary = await run_miner(settings, [Path(p) for p in spec["inputs"]])
    return {
        "event": "result",
        "segments": summary.segments,
        "ok": summary.ok,
        "repaired": summary.repaired,
        "fallback": summary.fallback,
        "failed": summary.failed,
        "calls": summary.calls,
        "retries": summary.retries,
        "prompt_tokens": summary.prompt_tokens,
        "output_tokens": summary.output_tokens,
        "wall_s": summary.wall_s,
        "outer_wall_s": time.monotonic() - begin,
        "started": begin,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the miner once with the JSON spec in the first argument."""
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])
    print(json.dumps(asyncio.run(_mine(spec))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
