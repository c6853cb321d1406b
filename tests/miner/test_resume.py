"""`miner run` as a real subprocess: SIGKILL mid-run then resume, and Ctrl-C (exit 130)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

from miner.runner import run_miner
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats
from tests.miner.helpers import CORPUS, CORPUS_SEGMENTS, db_rows, miner_settings

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


async def _wait_done(db: Path, at_least: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done = int(db_rows(db, DONE)[0][0])
        except sqlite3.Error:  # not created yet
            done = 0
        if done >= at_least:
            return done
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} segments committed in {timeout_s} s")


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

        calls = (await sim_stats(sim))["requests_total"]
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
