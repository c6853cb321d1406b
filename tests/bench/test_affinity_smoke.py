"""`python -m bench.affinity --smoke`: affinity cuts the swaps that interleaved models cause."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_the_table_and_affinity_cuts_swaps(tmp_path: Path) -> None:
    """The affinity scenario's smoke run writes its table, and affinity cuts the swaps."""
    out = tmp_path / "affinity.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.affinity", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert text in done.stdout
    rows = {
        m.group(1): (int(m.group(2)), m.group(3))
        for m in re.finditer(r"^\| ([^|]+?) \| (\d+) \| ([-\d]+) \|", text, flags=re.MULTILINE)
    }
    direct = rows["direct to Ollama"][0]
    off = rows["proxy, affinity off"]
    on = next(v for k, v in rows.items() if k.startswith("proxy, affinity on"))
    assert direct >= 15  # 24 interleaved requests: about one swap each
    assert off[0] >= 15
    assert on[0] <= 4
    assert int(on[1]) <= 4  # the proxy counts its own swaps in /stats
