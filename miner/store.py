"""SQLite storage (stdlib sqlite3, WAL): runs, sources, segments, items and evidence spans."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from miner.metrics import CallMetrics
from miner.outcome import Outcome
from miner.segments import Segment

__all__ = ["SourceStatus", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
    command TEXT, model TEXT, api TEXT, url TEXT, prompt_version TEXT, num_ctx INTEGER,
    workers INTEGER, status TEXT NOT NULL DEFAULT 'running', summary TEXT);
CREATE TABLE IF NOT EXISTS sources (
    source_id TEXT PRIMARY KEY, path TEXT NOT NULL, format TEXT NOT NULL,
    segments INTEGER NOT NULL, added_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    source_id TEXT NOT NULL REFERENCES sources ON DELETE CASCADE,
    segment_id TEXT NOT NULL, idx INTEGER NOT NULL, speaker TEXT NOT NULL,
    t0 TEXT NOT NULL, t1 TEXT NOT NULL, text TEXT NOT NULL, tokens INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'ok', 'repaired', 'fallback', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, retries INTEGER NOT NULL DEFAULT 0,
    error TEXT, raw_reply TEXT, notes TEXT, prompt_version TEXT, model TEXT, run_id INTEGER,
    prompt_eval_count INTEGER, prompt_eval_duration INTEGER, eval_count INTEGER,
    eval_duration INTEGER, load_duration INTEGER, total_duration INTEGER, done_reason TEXT,
    calls TEXT, truncated INTEGER NOT NULL DEFAULT 0, length_stop INTEGER NOT NULL DEFAULT 0,
    wall_s REAL, finished_at TEXT,
    PRIMARY KEY (source_id, segment_id));
CREATE TABLE IF NOT EXISTS items (
    item_id INTEGER PRIMARY KEY, source_id TEXT NOT NULL, segment_id TEXT NOT NULL,
    kind TEXT NOT NULL, seq INTEGER NOT NULL, label TEXT, data TEXT NOT NULL,
    UNIQUE (source_id, segment_id, kind, seq),
    FOREIGN KEY (source_id, segment_id) REFERENCES segments ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS evidence_spans (
    item_id INTEGER NOT NULL REFERENCES items ON DELETE CASCADE, seq INTEGER NOT NULL,
    segment_id TEXT, quote TEXT, t0 TEXT, t1 TEXT, context_type TEXT,
    PRIMARY KEY (item_id, seq));
"""

_LABELS = {"claims": "claim_text", "jargon": "term", "people": "name", "mental_models": "name"}
_SEGMENT_COLS = "source_id, segment_id, idx, speaker, t0, t1, text"
_METRICS = tuple(f.name for f in fields(CallMetrics))
_EXPORTED = (
    *("source_id", "path", "segment_id", "speaker", "t0", "t1", "status", "attempts"),
    *("retries", "error", "raw_reply", "prompt_version", "model"),
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Per-source counts for `miner status`."""

    source_id: str
    path: str
    format: str
    done: int
    failed: int
    pending: int


class Store:
    """One SQLite database. Methods are synchronous and thread-safe; call them from a thread
    (`asyncio.to_thread`) in async code. Each finished segment is its own transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self._db.execute(sql, args)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def start_run(self, **fields: Any) -> int:
        """Record a run; returns its id."""
        cols = ["started_at", *fields]
        marks = ", ".join("?" for _ in cols)
        with self._lock:
            cur = self._db.execute(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({marks})",
                [_now(), *fields.values()],
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        """Close a run with its status and summary."""
        self._write(
            [
                (
                    "UPDATE runs SET finished_at = ?, status = ?, summary = ? WHERE run_id = ?",
                    (_now(), status, json.dumps(summary), run_id),
                )
            ]
        )

    def add_source(self, source_id: str, path: str, fmt: str, segments: list[Segment]) -> None:
        """Register a source and its segments; known segments keep their state, segments the
        file no longer yields are removed."""
        keep = [s.segment_id for s in segments]
        stmts: list[tuple[str, Sequence[Any]]] = [
            (
                "INSERT INTO sources VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_id) DO UPDATE "
                "SET path = excluded.path, format = excluded.format, segments = excluded.segments",
                (source_id, path, fmt, len(segments), _now()),
            ),
            (
                "DELETE FROM segments WHERE source_id = ? AND segment_id NOT IN "
                f"({', '.join('?' for _ in keep)})",
                (source_id, *keep),
            ),
        ]
        stmts += [
            (
                f"INSERT OR IGNORE INTO segments ({_SEGMENT_COLS}, tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (s.source_id, s.segment_id, s.index, s.speaker, s.t0, s.t1, s.text, s.tokens),
            )
            for s in segments
        ]
        self._write(stmts)

    def segments(self, source_ids: Sequence[str] | None, statuses: Sequence[str]) -> list[Segment]:
        """Segments with one of `statuses`, of the given sources (all when None), in order."""
        where = f"status IN ({', '.join('?' for _ in statuses)})"
        args: list[Any] = list(statuses)
        if source_ids is not None:
            where += f" AND source_id IN ({', '.join('?' for _ in source_ids)})"
            args += list(source_ids)
        rows = self._rows(
            f"SELECT {_SEGMENT_COLS} FROM segments WHERE {where} ORDER BY source_id, idx", args
        )
        return [
            Segment(
                r["source_id"], r["segment_id"], r["idx"], r["speaker"], r["t0"], r["t1"], r["text"]
            )
            for r in rows
        ]

    def count(self, source_ids: Sequence[str] | None = None) -> dict[str, int]:
        """Segments per status, of the given sources (all when None)."""
        where, args = "", list(source_ids or [])
        if source_ids is not None:
            where = f"WHERE source_id IN ({', '.join('?' for _ in source_ids)})"
        rows = self._rows(
            f"SELECT status, COUNT(*) AS n FROM segments {where} GROUP BY status", args
        )
        return {r["status"]: r["n"] for r in rows}

    def commit(self, outcome: Outcome, run_id: int | None) -> None:
        """Store one finished segment and its items, replacing any earlier items (idempotent)."""
        seg = outcome.segment
        key = (seg.source_id, seg.segment_id)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM items WHERE source_id = ? AND segment_id = ?", key)
                self._insert_items(key, outcome)
                db.execute(_UPDATE_SEGMENT, (*_segment_row(outcome, run_id), *key))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _insert_items(self, key: tuple[str, str], outcome: Outcome) -> None:
        """The segment's items and their evidence spans (inside the caller's transaction)."""
        db = self._db
        for kind, items in outcome.items.items():
            for seq, item in enumerate(items):
                label = item.get(_LABELS[kind])
                cur = db.execute(
                    "INSERT INTO items (source_id, segment_id, kind, seq, label, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (*key, kind, seq, label, json.dumps(item, ensure_ascii=False)),
                )
                spans = item.get("mentions" if kind == "people" else "evidence_spans")
                for n, span in enumerate(spans or []):
                    db.execute(
                        "INSERT INTO evidence_spans VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            cur.lastrowid,
                            n,
                            span.get("segment_id"),
                            span.get("quote"),
                            span.get("t0"),
                            span.get("t1"),
                            span.get("context_type"),
                        ),
                    )

    def requeue_failed(self) -> int:
        """Set failed segments back to pending; returns how many."""
        with self._lock:
            cur = self._db.execute("UPDATE segments SET status = 'pending' WHERE status = 'failed'")
            return cur.rowcount

    def status(self) -> list[SourceStatus]:
        """Done, failed and pending segments per source."""
        rows = self._rows(
            "SELECT s.source_id, s.path, s.format, "
            "SUM(g.status IN ('ok', 'repaired', 'fallback')) AS done, "
            "SUM(g.status = 'failed') AS failed, SUM(g.status = 'pending') AS pending "
            "FROM sources s JOIN segments g USING (source_id) GROUP BY s.source_id ORDER BY s.path"
        )
        return [SourceStatus(*(r[k] for k in r.keys())) for r in rows]  # noqa: SIM118

    def export(self) -> Iterator[dict[str, Any]]:
        """One record per segment: identity, status, error, metrics and its items by kind."""
        items: dict[tuple[str, str], dict[str, list[Any]]] = {}
        for r in self._rows("SELECT * FROM items ORDER BY source_id, segment_id, kind, seq"):
            by_kind = items.setdefault((r["source_id"], r["segment_id"]), {})
            by_kind.setdefault(r["kind"], []).append(json.loads(r["data"]))
        rows = self._rows(
            "SELECT g.*, s.path FROM segments g JOIN sources s USING (source_id) "
            "ORDER BY s.path, g.idx"
        )
        for r in rows:
            found = items.get((r["source_id"], r["segment_id"]), {})
            yield {k: r[k] for k in _EXPORTED} | {
                "index": r["idx"],
                "notes": json.loads(r["notes"]) if r["notes"] else [],
                "metrics": {k: r[k] for k in _METRICS},
                "truncated": bool(r["truncated"]),
                "length_stop": bool(r["length_stop"]),
                "items": {k: found.get(k, []) for k in _LABELS},
            }


_UPDATE_SEGMENT = (
    "UPDATE segments SET status = ?, attempts = attempts + ?, retries = ?, "
    "error = ?, raw_reply = ?, notes = ?, prompt_version = ?, model = ?, "
    "run_id = ?, prompt_eval_count = ?, prompt_eval_duration = ?, "
    "eval_count = ?, eval_duration = ?, load_duration = ?, total_duration = ?, "
    "done_reason = ?, calls = ?, truncated = ?, length_stop = ?, wall_s = ?, "
    "finished_at = ? WHERE source_id = ? AND segment_id = ?"
)


def _segment_row(outcome: Outcome, run_id: int | None) -> tuple[object, ...]:
    """The values `_UPDATE_SEGMENT` sets for one finished segment, in order."""
    m = outcome.metrics
    return (
        outcome.status,
        len(outcome.calls) or 1,
        outcome.retries,
        outcome.error,
        outcome.raw_reply,
        json.dumps(outcome.notes) if outcome.notes else None,
        outcome.prompt_version,
        outcome.model,
        run_id,
        m.prompt_eval_count,
        m.prompt_eval_duration,
        m.eval_count,
        m.eval_duration,
        m.load_duration,
        m.total_duration,
        m.done_reason,
        json.dumps([c.as_dict() for c in outcome.calls]),
        int(outcome.truncated),
        int(outcome.length_stop),
        outcome.wall_s,
        _now(),
    )
