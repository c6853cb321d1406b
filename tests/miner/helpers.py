"""Helpers for the miner's tests: the sample corpus, settings for a target URL, db queries."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from miner.settings import MinerSettings

DATA = Path(__file__).resolve().parents[1] / "data"
CORPUS = DATA / "corpus"
CORPUS_SEGMENTS = 18  # what tests/data/corpus yields with the default budget


def miner_settings(url: str, db: Path, **overrides: Any) -> MinerSettings:
    """Settings for tests: no progress bar, quick retries, the given target and db."""
    values: dict[str, Any] = {
        "url": url,
        "db": db,
        "workers": 4,
        "progress": False,
        "retry_base_s": 0.05,
        "retry_max_s": 0.5,
        "retry_attempts": 30,
    }
    return MinerSettings(**(values | overrides))


def db_rows(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on the miner's database."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def many_segments(folder: Path, count: int, words: int = 12) -> Path:
    """Write a JSON input with `count` short segments; returns its path."""
    records = [
        {
            "speaker": f"S{i % 3}",
            "t0": str(i),
            "t1": str(i + 1),
            "text": " ".join(f"topic{i} word{j}" for j in range(words)) + ".",
        }
        for i in range(count)
    ]
    path = folder / f"many{count}.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path
