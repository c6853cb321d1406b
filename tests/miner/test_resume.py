"""`miner run` as a real subprocess: SIGKILL mid-run then resume, and Ctrl-C (exit 130)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from miner.runner import run_miner
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats
from tests.miner.helpers import CORPUS, CORPUS_SEGMENTS, db_rows, miner_settings
from tests.waiting import PATIENCE_S, wait_for

REPO = Path(__file__).resolve().parents[2]
DONE = "SELECT COUNT(*) FROM segments WHERE status IN ('ok', 'repaired', 'fallback')"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINER_")}
    config = tmp_path / "empty.toml"
    config.write_text("", encoding="utf-8")
    return env | {"LANES_CONFIG": str(config), "PYTHONPATH": str(REPO)}


async def _start(
    url: str, db: Path, tmp_path: Path, workers: int = 2
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "miner", "run", str(CORPUS), "--url", url, "--db", str(db),
        "--workers", str(workers), "--no-progress", "--retry-base-s", "0.05",
        cwd=REPO, env=_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _wait_done(db: Path, at_least: int) -> int:
    """Wait until the miner has committed `at_least` segments; returns how many it has."""

    def done() -> int:
        try:
            count = int(db_rows(db, DONE)[0][0])
        except sqlite3.Error:  # not created yet
            return 0
        return count if count >= at_least else 0

    committed: int = await wait_for(
        done, timeout=PATIENCE_S, what=f"{at_least} segments committed", interval=0.05
    )
    return committed


async def _sim_idle(sim: TestServer) -> dict[str, Any] | None:
    """The simulator's stats once nothing is in flight or queued, else None."""
    stats = await sim_stats(sim)
    busy = [m["in_flight"] + m["queued"] for m in stats["models"].values()]
    return stats if sum(busy) + stats["scheduler_queue"] == 0 else None


class TestKillAndResume:
    async def test_sigkill_then_rerun_completes_each_segment_once(
        self, simulator: SimulatorFactory, tmp_path: Path
    ) -> None:
        """1. start `miner run` in a subprocess against a slow simulator;
        2. SIGKILL it once a few segments are committed;
        3. rerun: only the unfinished segments are requested, everything ends ok once;
        4. items match a clean run exactly (no duplicates, nothing lost);
        5. rerun the finished db: no calls at all."""
        sim = await simulator(lanes=2, decode_tps=2500, load_seconds=0)
        url, db = base_url(sim), tmp_path / "killed.db"
        proc = await _start(url, db, tmp_path)
        await _wait_done(db, 3)
        proc.kill()
        await proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        done_before = int(db_rows(db, DONE)[0][0])
        assert 3 <= done_before < CORPUS_SEGMENTS
        first = set(db_rows(db, "SELECT segment_id, run_id FROM segments WHERE status = 'ok'"))

        # The killed miner's last requests are counted once the simulator has let them go.
        idle = await wait_for(
            lambda: _sim_idle(sim), timeout=PATIENCE_S, what="the killed miner's requests to end"
        )
        calls = idle["requests_total"]
        rerun = await _start(url, db, tmp_path, workers=4)
        out, err = await rerun.communicate()
        assert rerun.returncode == 0, err.decode()
        assert f"{done_before} already done" in out.decode()
        assert (await sim_stats(sim))["requests_total"] - calls == CORPUS_SEGMENTS - done_before
        assert db_rows(db, "SELECT status, COUNT(*) FROM segments GROUP BY status") == [
            ("ok", CORPUS_SEGMENTS)
        ]
        assert first <= set(db_rows(db, "SELECT segment_id, run_id FROM segments"))
        assert db_rows(db, "SELECT MAX(attempts) FROM segments") == [(1,)]

        clean = tmp_path / "clean.db"
        await run_miner(miner_settings(url, clean), [CORPUS])
        per_segment = "SELECT segment_id, kind, COUNT(*) FROM items GROUP BY 1, 2 ORDER BY 1, 2"
        assert db_rows(db, per_segment) == db_rows(clean, per_segment)

        calls = (await sim_stats(sim))["requests_total"]
        again = await _start(url, db, tmp_path, workers=4)
        out, _ = await again.communicate()
        assert again.returncode == 0
        assert f"nothing to mine; {CORPUS_SEGMENTS} already done" in out.decode()
        assert (await sim_stats(sim))["requests_total"] == calls


class TestCtrlC:
    async def test_sigint_stops_cleanly_with_130(
        self, simulator: SimulatorFactory, tmp_path: Path
    ) -> None:
        """SIGINT mid-run: exit 130, committed segments stay, the run is marked interrupted."""
        sim = await simulator(lanes=2, decode_tps=700, load_seconds=0)
        db = tmp_path / "int.db"
        proc = await _start(base_url(sim), db, tmp_path)
        seen = await _wait_done(db, 2)
        proc.send_signal(signal.SIGINT)
        _, err = await proc.communicate()
        assert proc.returncode == 130, err.decode()
        assert "interrupted" in err.decode()
        assert "Traceback" not in err.decode()
        assert int(db_rows(db, DONE)[0][0]) >= seen
        assert db_rows(db, "SELECT status FROM runs") == [("interrupted",)]
        assert db_rows(db, "SELECT COUNT(*) FROM segments WHERE status = 'failed'") == [(0,)]
