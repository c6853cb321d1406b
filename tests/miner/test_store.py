"""SQLite storage: WAL, commits per segment, idempotent items, status and export."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from miner.metrics import CallMetrics
from miner.outcome import Outcome
from miner.segments import Segment
from miner.store import Store

SPAN = {"segment_id": "seg_0000_x", "quote": "q", "t0": "0", "t1": "1"}
CLAIM = {
    "claim_text": "A long enough claim.",
    "claim_type": "factual",
    "domain": "d",
    "stance": "asserts",
    "evidence_spans": [SPAN, SPAN],
}


def _segments(source: str = "/src/a.md", n: int = 3) -> list[Segment]:
    return [
        Segment(source, f"seg_{i:04d}_x", i, "A", f"{i}", f"{i + 1}", f"text {i}") for i in range(n)
    ]


def _ok(seg: Segment) -> Outcome:
    return Outcome(
        segment=seg,
        status="ok",
        model="m",
        prompt_version="v1",
        items={"claims": [CLAIM], "jargon": [], "people": [], "mental_models": []},
        calls=[
            CallMetrics(
                prompt_eval_count=100, eval_count=20, eval_duration=10**9, done_reason="stop"
            )
        ],
    )


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "sub" / "miner.db")
    yield store
    store.close()


class TestStore:
    def test_wal_mode(self, store: Store) -> None:
        """The database runs in WAL mode."""
        with sqlite3.connect(store.path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    def test_add_source_is_idempotent(self, store: Store) -> None:
        """Registering the same segments twice keeps one row each and their status."""
        segs = _segments()
        store.add_source("/src/a.md", "/src/a.md", "transcript", segs)
        store.commit(_ok(segs[0]), None)
        store.add_source("/src/a.md", "/src/a.md", "transcript", segs)
        assert store.count() == {"ok": 1, "pending": 2}
        assert segs[1:] == store.segments(None, ["pending"])

    def test_stale_segments_removed(self, store: Store) -> None:
        """Segments a changed file no longer yields are removed with their items."""
        segs = _segments()
        store.add_source("/src/a.md", "/src/a.md", "transcript", segs)
        store.commit(_ok(segs[2]), None)
        store.add_source("/src/a.md", "/src/a.md", "transcript", segs[:2])
        assert store.count() == {"pending": 2}
        assert [r for r in store.export() if r["items"]["claims"]] == []

    def test_commit_twice_never_duplicates_items(self, store: Store) -> None:
        """Committing a segment again replaces its items and spans."""
        seg = _segments(n=1)[0]
        store.add_source(seg.source_id, seg.source_id, "text", [seg])
        store.commit(_ok(seg), 1)
        store.commit(_ok(seg), 2)
        with sqlite3.connect(store.path) as db:
            assert db.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 1
            assert db.execute("SELECT COUNT(*) FROM evidence_spans").fetchone()[0] == 2
            assert db.execute("SELECT attempts FROM segments").fetchone()[0] == 2

    def test_failed_keeps_error_and_raw_reply(self, store: Store) -> None:
        """A failed segment stores its error and raw reply; retry-failed re-queues it."""
        seg = _segments(n=1)[0]
        store.add_source(seg.source_id, seg.source_id, "text", [seg])
        failed = Outcome(
            segment=seg,
            status="failed",
            model="m",
            prompt_version="v1",
            error="reply is not JSON",
            raw_reply="{oops",
        )
        store.commit(failed, 1)
        (record,) = store.export()
        assert (
            record["status"],
            record["error"],
            record["raw_reply"],
        ) == ("failed", "reply is not JSON", "{oops")
        assert store.requeue_failed() == 1
        assert store.count() == {"pending": 1}

    def test_status_per_source(self, store: Store) -> None:
        """status() counts done, failed and pending per source."""
        a, b = _segments("/src/a.md"), _segments("/src/b.md", 2)
        store.add_source("/src/a.md", "/src/a.md", "transcript", a)
        store.add_source("/src/b.md", "/src/b.md", "srt", b)
        store.commit(_ok(a[0]), None)
        store.commit(
            Outcome(segment=a[1], status="failed", model="m", prompt_version="v", error="x"), None
        )
        rows = {r.path: (r.done, r.failed, r.pending) for r in store.status()}
        assert rows == {"/src/a.md": (1, 1, 1), "/src/b.md": (0, 0, 2)}

    def test_export_record_shape(self, store: Store) -> None:
        """Export: one record per segment with metrics, status and items by kind."""
        seg = _segments(n=1)[0]
        store.add_source(seg.source_id, seg.source_id, "text", [seg])
        store.commit(_ok(seg), 7)
        (record,) = store.export()
        assert (
            record["metrics"]["prompt_eval_count"],
            record["metrics"]["eval_count"],
            record["metrics"]["done_reason"],
        ) == (100, 20, "stop")
        assert record["items"]["claims"] == [CLAIM]
        assert {"claims", "jargon", "people", "mental_models"} == set(record["items"])

    def test_failed_outcome_needs_error(self) -> None:
        """A failed outcome without an error (or with items) cannot be built."""
        with pytest.raises(ValueError, match="needs an error"):
            Outcome(segment=_segments(n=1)[0], status="failed", model="m", prompt_version="v")
