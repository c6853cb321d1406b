"""End to end against the simulator over real sockets: directly and through the proxy."""

from __future__ import annotations

from pathlib import Path

from miner.runner import run_miner
from miner.schema import MinerOutput
from miner.store import Store
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url, sim_stats
from tests.miner.helpers import CORPUS, CORPUS_SEGMENTS, db_rows, many_segments, miner_settings

METRIC_COLUMNS = (
    "prompt_eval_count, prompt_eval_duration, eval_count, eval_duration, "
    "load_duration, total_duration, done_reason"
)


def _assert_all_ok_and_valid(db: Path, expected: int) -> None:
    store = Store(db)
    try:
        records = list(store.export())
    finally:
        store.close()
    assert len(records) == expected
    assert {r["status"] for r in records} == {"ok"}
    for record in records:
        MinerOutput.model_validate(record["items"])
        assert record["prompt_version"].startswith("extract.v1+")
    assert sum(len(v) for r in records for v in r["items"].values()) > 0


class TestDirect:
    async def test_multi_format_corpus_all_ok(self, simulator: SimulatorFactory, db: Path) -> None:
        """Every segment of the multi-format corpus ends ok; items validate; metrics stored."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        summary = await run_miner(miner_settings(base_url(sim), db), [CORPUS])
        assert (summary.segments, summary.ok, summary.failed) == (CORPUS_SEGMENTS, 18, 0)
        assert summary.input_errors == []
        assert summary.all_ok
        _assert_all_ok_and_valid(db, CORPUS_SEGMENTS)
        rows = db_rows(db, f"SELECT {METRIC_COLUMNS}, attempts, model FROM segments")
        assert all(None not in row for row in rows)
        assert {row[6] for row in rows} == {"stop"}
        assert {row[8] for row in rows} == {"qwen2.5:7b-instruct"}
        assert summary.output_tokens == sum(row[2] for row in rows)
        assert summary.lanes is None  # the simulator is not our proxy

    async def test_peak_in_flight_never_exceeds_workers(
        self, simulator: SimulatorFactory, tmp_path: Path, db: Path
    ) -> None:
        """With 3 workers the server never sees more than 3 requests at once."""
        sim = await simulator(lanes=8, decode_tps=3000, load_seconds=0)
        source = many_segments(tmp_path, 12)
        summary = await run_miner(miner_settings(base_url(sim), db, workers=3), [source])
        stats = await sim_stats(sim)
        assert summary.ok == 12
        assert 2 <= stats["max_in_flight_total"] <= 3
        assert stats["requests_total"] == 12

    async def test_openai_api(self, simulator: SimulatorFactory, db: Path) -> None:
        """`api=openai` mines through /v1/chat/completions with response_format."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        settings = miner_settings(base_url(sim), db, api="openai")
        summary = await run_miner(settings, [CORPUS / "interview.md"])
        assert (summary.segments, summary.ok) == (6, 6)
        assert summary.output_tokens > 0

    async def test_rerun_skips_finished(self, simulator: SimulatorFactory, db: Path) -> None:
        """A rerun over a finished db makes no calls at all and duplicates nothing."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        settings = miner_settings(base_url(sim), db)
        await run_miner(settings, [CORPUS])
        items = db_rows(db, "SELECT COUNT(*) FROM items")[0][0]
        calls = (await sim_stats(sim))["requests_total"]
        again = await run_miner(settings, [CORPUS])
        assert (again.segments, again.skipped) == (0, CORPUS_SEGMENTS)
        assert (await sim_stats(sim))["requests_total"] == calls
        assert db_rows(db, "SELECT COUNT(*) FROM items")[0][0] == items


class TestFailures:
    async def test_malformed_output_is_visible(self, simulator: SimulatorFactory, db: Path) -> None:
        """Malformed replies end failed (error and raw reply kept) or fallback; the rest ok."""
        sim = await simulator(lanes=2, decode_tps=8000, load_seconds=0, fault_malformed_rate=0.5)
        summary = await run_miner(miner_settings(base_url(sim), db), [CORPUS])
        assert summary.failed + summary.fallback > 0
        assert summary.ok > 0
        assert summary.ok + summary.fallback + summary.failed == CORPUS_SEGMENTS
        assert not summary.all_ok
        failed = db_rows(
            db, "SELECT segment_id, error, raw_reply FROM segments WHERE status = 'failed'"
        )
        assert all(error and "not JSON" in error for _, error, _ in failed)
        assert all(raw for _, _, raw in failed)
        failed_ids = [row[0] for row in failed]
        assert db_rows(
            db,
            f"SELECT COUNT(*) FROM items WHERE segment_id IN ({','.join('?' * len(failed_ids))})",
            tuple(failed_ids),
        ) == [(0,)]

    async def test_server_errors_fail_with_reason(
        self, simulator: SimulatorFactory, db: Path
    ) -> None:
        """500s are not retried: those segments fail with the server's error text."""
        sim = await simulator(lanes=2, decode_tps=8000, load_seconds=0, fault_error_rate=0.5)
        summary = await run_miner(miner_settings(base_url(sim), db), [CORPUS])
        assert summary.failed > 0
        assert summary.ok == CORPUS_SEGMENTS - summary.failed
        errors = {
            row[0] for row in db_rows(db, "SELECT error FROM segments WHERE error IS NOT NULL")
        }
        assert errors == {
            "request failed: HTTP 500: an error was encountered while running the model"
        }


class TestFlags:
    async def test_truncation_and_length_stops_flagged(
        self, simulator: SimulatorFactory, db: Path
    ) -> None:
        """A num_ctx below the prompt size warns up front and flags every segment truncated;
        a tiny num_predict shows as done_reason length, stored per segment."""
        sim = await simulator(lanes=2, decode_tps=8000, load_seconds=0)
        settings = miner_settings(base_url(sim), db, num_ctx=1024, num_predict=40)
        summary = await run_miner(settings, [CORPUS / "interview.md"])
        assert any("num_ctx is 1024" in w for w in summary.warnings)
        assert summary.truncated == 6
        assert summary.length_stops > 0
        rows = db_rows(db, "SELECT truncated, length_stop, done_reason, error FROM segments")
        assert all(row[0] == 1 for row in rows)
        stopped = [row for row in rows if row[1]]
        assert stopped
        assert all(row[2] == "length" for row in stopped)
        assert all("done_reason=length" in row[3] for row in stopped if row[3])


class TestBackPressure:
    async def test_503_from_tiny_queue_is_retried(
        self, simulator: SimulatorFactory, tmp_path: Path, db: Path
    ) -> None:
        """Against a tiny scheduler queue during a model load, 503s are retried until every
        segment completes, and the retries are counted."""
        sim = await simulator(lanes=2, load_seconds=0.6, max_queue=1, decode_tps=4000)
        source = many_segments(tmp_path, 8)
        summary = await run_miner(miner_settings(base_url(sim), db, workers=8), [source])
        assert (summary.ok, summary.failed) == (8, 0)
        assert summary.retries > 0
        stored = db_rows(db, "SELECT SUM(retries) FROM segments")[0][0]
        assert stored == summary.retries
        model = (await sim_stats(sim))["models"]["qwen2.5:7b-instruct"]
        assert model.get("rejected", summary.retries) == summary.retries


class TestThroughProxy:
    async def test_corpus_through_proxy(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, db: Path
    ) -> None:
        """Through the proxy every segment ends ok, and the summary reports its lanes."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        prx = await proxy(upstream=base_url(sim), lanes=2)
        summary = await run_miner(miner_settings(base_url(prx), db, workers=6), [CORPUS])
        assert (summary.ok, summary.failed) == (CORPUS_SEGMENTS, 0)
        _assert_all_ok_and_valid(db, CORPUS_SEGMENTS)
        assert summary.lanes is not None
        assert summary.lanes.configured == 2
        assert summary.lanes.admitted == CORPUS_SEGMENTS
        assert (await sim_stats(sim))["max_in_flight_total"] <= 2

    async def test_a_token_protected_proxy(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, db: Path
    ) -> None:
        """With `token` the miner mines through a proxy that needs one, /stats included."""
        sim = await simulator(lanes=2, decode_tps=4000, load_seconds=0)
        prx = await proxy(upstream=base_url(sim), lanes=2, auth_token="s3cret")
        settings = miner_settings(base_url(prx), db, workers=4, token="s3cret")
        summary = await run_miner(settings, [CORPUS])
        assert (summary.ok, summary.failed) == (CORPUS_SEGMENTS, 0)
        assert summary.lanes is not None
        assert summary.lanes.admitted == CORPUS_SEGMENTS

    async def test_proxy_503_with_retry_after(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, tmp_path: Path, db: Path
    ) -> None:
        """The proxy's queue-full 503s (with Retry-After) are waited out; all segments finish."""
        sim = await simulator(lanes=1, decode_tps=2000, load_seconds=0)
        prx = await proxy(upstream=base_url(sim), lanes=1, max_queue=1)
        source = many_segments(tmp_path, 5, words=4)
        summary = await run_miner(miner_settings(base_url(prx), db, workers=5), [source])
        assert (summary.ok, summary.failed) == (5, 0)
        assert summary.retries > 0
        assert summary.lanes is not None
        assert summary.lanes.rejected == summary.retries
