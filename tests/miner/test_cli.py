"""The `miner` command in-process: run, status, export, retry-failed and exit statuses."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from miner.__main__ import main
from miner.settings import MinerSettings
from proxy.config import SettingsError, load_settings
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.miner.helpers import CORPUS, DATA


async def _miner(*argv: str) -> tuple[int, str, str]:
    """Run `miner ARGV` in a thread (it runs its own event loop) and capture its output."""
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(main, list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No MINER_* variables or user config file leak in; main()'s logging setup leaks out."""
    for name in [n for n in os.environ if n.startswith("MINER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LANES_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    yield
    structlog.reset_defaults()


class TestUsage:
    async def test_invalid_flag_names_the_setting(self, tmp_path: Path) -> None:
        """A bad value prints one line naming the setting and exits 2."""
        code, _, err = await _miner("run", str(CORPUS), "--workers", "0", "--db", str(tmp_path))
        assert code == 2
        assert err.count("\n") == 1
        assert err.startswith("miner: invalid setting 'workers' (flag --workers, env MINER_WORKERS")

    async def test_invalid_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Env values are validated too."""
        monkeypatch.setenv("MINER_NUM_CTX", "big")
        code, _, err = await _miner("status")
        assert code == 2
        assert "'num_ctx'" in err

    async def test_status_without_database(self, tmp_path: Path) -> None:
        """status and export on a missing database say so and exit 1, creating nothing."""
        code, _, err = await _miner("status", "--db", str(tmp_path / "none.db"))
        assert (code, err) == (
            1,
            f"miner: no database at {tmp_path / 'none.db'}; `miner run` creates it\n",
        )
        assert (await _miner("export", "--db", str(tmp_path / "none.db")))[0] == 1
        assert not (tmp_path / "none.db").exists()

    async def test_unknown_command_and_missing_inputs(self) -> None:
        """argparse usage errors exit 2."""
        assert (await _miner("dig"))[0] == 2
        assert (await _miner("run"))[0] == 2

    async def test_nothing_usable_exits_2(self, tmp_path: Path) -> None:
        """When no input can be read at all, the exit status is 2 with per-file errors."""
        code, out, _ = await _miner("run", str(tmp_path / "nope.md"), "--db", str(tmp_path / "d"))
        assert code == 2
        assert "nope.md: no such file or folder" in out


class TestSettings:
    def test_precedence_flags_env_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Flags beat env, env beats the [miner] table, the table beats defaults."""
        config = tmp_path / "c.toml"
        config.write_text('[miner]\nworkers = 3\nmodel = "file"\nnum_ctx = 4096\n', "utf-8")
        monkeypatch.setenv("MINER_MODEL", "env")
        monkeypatch.setenv("MINER_NUM_CTX", "16384")
        overrides = {"num_ctx": "2048", "url": None}
        settings = load_settings(MinerSettings, overrides, config_file=config)
        assert (settings.workers, settings.model, settings.num_ctx) == (3, "env", 2048)
        assert settings.url == "http://127.0.0.1:11435"

    def test_defaults(self) -> None:
        """The issue's defaults."""
        s = MinerSettings()
        assert (s.workers, s.api, s.num_ctx, s.num_predict, s.client, s.priority) == (
            12, "ollama", 8192, 2048, "miner", "batch"
        )  # fmt: skip
        assert s.db.name == "miner.db"

    def test_bad_config_file(self, tmp_path: Path) -> None:
        """A missing or broken config file is a SettingsError."""
        with pytest.raises(SettingsError, match="does not exist"):
            load_settings(MinerSettings, {}, config_file=tmp_path / "missing.toml")
        bad = tmp_path / "bad.toml"
        bad.write_text("[miner\n", "utf-8")
        with pytest.raises(SettingsError, match="config file"):
            load_settings(MinerSettings, {}, config_file=bad)

    def test_budget_order_checked(self) -> None:
        """segment_min_tokens above segment_max_tokens is rejected."""
        with pytest.raises(SettingsError, match="segment_min_tokens"):
            load_settings(MinerSettings, {"segment_min_tokens": 900, "segment_max_tokens": 500})


class TestCommands:
    async def test_run_status_export(self, simulator: SimulatorFactory, tmp_path: Path) -> None:
        """run prints the summary (exit 0); status counts per source; export writes records."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        db = str(tmp_path / "m.db")
        code, out, _ = await _miner(
            "run", str(CORPUS / "interview.md"), str(CORPUS / "talk.srt"),
            "--url", base_url(sim), "--db", db, "--no-progress",
        )  # fmt: skip
        assert code == 0
        assert "segments   9 mined: 9 ok, 0 repaired, 0 fallback, 0 failed" in out
        code, out, _ = await _miner("status", "--db", db)
        assert code == 0
        assert "interview.md  transcript      6      0       0" in out
        assert out.splitlines()[-1].split() == ["total", "9", "0", "0"]
        target = tmp_path / "out.json"
        assert (await _miner("export", "--db", db, "--format", "json", "--out", str(target)))[
            0
        ] == 0
        records = json.loads(target.read_text("utf-8"))
        assert [r["status"] for r in records] == ["ok"] * 9
        code, out, _ = await _miner("export", "--db", db)
        assert len(out.splitlines()) == 9
        assert json.loads(out.splitlines()[0])["metrics"]["eval_count"] > 0

    async def test_failures_exit_1_then_retry_failed(
        self, simulator: SimulatorFactory, tmp_path: Path
    ) -> None:
        """Failed segments give exit 1 (also on a plain rerun); retry-failed re-mines them."""
        broken = await simulator(lanes=2, decode_tps=4000, load_seconds=0, fault_error_rate=1.0)
        db = str(tmp_path / "m.db")
        args = ("--db", db, "--no-progress", "--retry-attempts", "0")
        source = str(CORPUS / "interview.md")
        code, out, err = await _miner("run", source, "--url", base_url(broken), *args)
        assert code == 1
        assert "0 ok, 0 repaired, 0 fallback, 6 failed" in out
        assert "segment_failed" in err
        code, out, _ = await _miner("run", source, "--url", base_url(broken), *args)
        assert code == 1
        assert "6 failed in earlier runs" in out
        assert "nothing to mine; 0 already done" in out
        healthy = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        code, out, _ = await _miner("retry-failed", "--url", base_url(healthy), *args)
        assert code == 0
        assert "6 ok" in out
        code, out, _ = await _miner("status", "--db", db)
        assert out.splitlines()[-1].split() == ["total", "6", "0", "0"]

    async def test_bad_file_among_good_ones(
        self, simulator: SimulatorFactory, tmp_path: Path
    ) -> None:
        """An unreadable file is reported; the others are mined; exit 1."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        code, out, err = await _miner(
            "run", str(DATA / "malformed" / "empty.txt"), str(CORPUS / "segments.jsonl"),
            "--url", base_url(sim), "--db", str(tmp_path / "m.db"), "--json", "--progress",
        )  # fmt: skip
        summary = json.loads(out)
        assert "2/2" in err  # the progress bar's last frame, on stderr
        assert code == 1
        assert (summary["ok"], summary["failed"]) == (2, 0)
        assert summary["input_errors"] == [f"{DATA / 'malformed' / 'empty.txt'}: empty file"]
