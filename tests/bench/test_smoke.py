"""`python -m bench.run --smoke` runs every scenario end to end and writes a complete report."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from bench.run import SCENARIOS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(name="report", scope="module")
def _report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One smoke run of every scenario (nginx when installed, never LiteLLM)."""
    out = tmp_path_factory.mktemp("bench") / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--quiet", "--contenders", "nginx",
         "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


class TestSmokeRun:
    def test_every_scenario_has_its_section_and_no_failure(self, report: Path) -> None:
        """Each scenario's title appears, and none reports that it failed."""
        text = report.read_text()
        for title in ("## 1. Overhead", "## 2. Lanes kept busy", "## 3. Fairness",
                      "## 4. Scale of the queue", "## 5. Fair share by work"):  # fmt: skip
            assert title in text
        assert "This scenario failed" not in text

    def test_targets_are_marked(self, report: Path) -> None:
        """The targets table gives every target its issue and a verdict; issue 16's nine are
        all there (its five overhead targets as ratios to the floor)."""
        text = report.read_text()
        table = text.split("## Targets", 1)[1].split("\n\n", 2)[1].splitlines()[2:]
        verdicts = ("✅ met", "❌ missed", "— not measured")
        assert all(any(v in row for v in verdicts) for row in table)
        issues = [row.split(" | ")[1] for row in table]
        assert (issues.count("16"), len(table)) == (9, issues.count("16") + issues.count("7"))
        assert "× (worst of native and v1)" in text

    def test_machine_and_skips_are_recorded(self, report: Path) -> None:
        """The machine table names the cores and Python; LiteLLM is reported as skipped."""
        text = report.read_text()
        assert "logical cores" in text
        assert "| Python | CPython" in text
        assert "- LiteLLM: not selected (--contenders)" in text

    def test_charts_are_valid_pngs(self, report: Path) -> None:
        """Every chart the report links is a PNG whose image data decompresses."""
        text = report.read_text()
        links = [
            line.split("](", 1)[1].rstrip(")")
            for line in text.splitlines()
            if line.startswith("![")
        ]
        assert len(links) == 5
        for link in links:
            data = (report.parent / link).read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n")
            start = data.index(b"IDAT") + 4
            length = int.from_bytes(data[start - 8 : start - 4], "big")
            assert zlib.decompress(data[start : start + length])

    def test_raw_results_are_json(self, report: Path) -> None:
        """The raw figures sit beside the charts as JSON, one entry per scenario."""
        raw = json.loads((report.parent / "bench" / "results" / "latest.json").read_text())
        assert sorted(raw) == sorted(SCENARIOS)
        assert all(entry["error"] is None for entry in raw.values())
