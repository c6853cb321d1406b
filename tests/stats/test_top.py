"""`lanes top` frames rendered from a recorded /stats snapshot."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from proxy.stats.top import bar, render_frame

DATA = Path(__file__).parent / "data"


def _render(doc: dict[str, Any], width: int, queue: dict[str, Any] | None = None) -> str:
    console = Console(
        width=width, record=True, color_system=None, force_terminal=False, file=io.StringIO()
    )
    console.print(render_frame(doc, width, queue))
    return console.export_text()


def _snapshot() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / "stats_snapshot.json").read_text(encoding="utf-8"))
    return doc


def _queue() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / "queue_snapshot.json").read_text(encoding="utf-8"))
    return doc


class TestTop:
    def test_frame_matches_the_recorded_text(self) -> None:
        """The frame for the recorded snapshot is exactly the stored text capture.

        After an intended change of the layout, rewrite it with LANES_UPDATE_SNAPSHOTS=1.
        """
        text = _render(_snapshot(), 110, _queue())
        expected = DATA / "top_frame.txt"
        if os.environ.get("LANES_UPDATE_SNAPSHOTS") == "1":
            expected.write_text(text, encoding="utf-8")
        assert text == expected.read_text(encoding="utf-8")

    def test_frame_shows_idle_lanes_and_no_warnings(self) -> None:
        """Free lanes read `idle`; an empty warning list says so."""
        doc = _snapshot()
        doc["lanes"] = {"configured": 2, "busy": 0, "free": 2, "running": []}
        doc["warnings"] = []
        text = _render(doc, 80)
        assert text.count("idle") == 2
        assert "no warnings" in text
        assert all(len(line) <= 80 for line in text.splitlines())

    def test_frame_shows_each_host_when_there_are_several(self) -> None:
        """With two upstreams, each gets a line with its busy lanes, and a down one says so."""
        doc = _snapshot()
        one = {"url": "http://a:11434", "lanes": 2, "busy": 1, "healthy": True}
        one |= {"requests": 7, "swaps": 0, "errors": 0}
        doc["upstreams"] = {"mac": one, "gpu-box": one | {"busy": 0, "healthy": False}}
        text = _render(doc, 110)
        assert "host mac         1/2 busy  requests 7" in text
        assert "host gpu-box     0/2 busy" in text
        assert text.count("DOWN") == 1
        assert "host " not in _render(_snapshot(), 110)

    def test_first_line_is_the_verdict(self) -> None:
        """The frame opens with the primary verdict, its fix, then the other kinds that hold."""
        lines = _render(_snapshot(), 200).splitlines()
        verdict = _snapshot()["verdict"]
        assert lines[0].startswith(f"verdict  {verdict['kind']}: {verdict['explanation']}")
        assert lines[1].strip() == f"fix: {verdict['fix']}"
        assert lines[2].strip() == "also: " + ", ".join(v["kind"] for v in _snapshot()["secondary"])

    def test_bar(self) -> None:
        """Bars clamp their fraction and keep their width."""
        assert bar(0.5, 4) == "██░░"
        assert bar(2.0, 3) == "███"
        assert bar(-1, 2) == "░░"

    def test_docs_show_this_frame(self) -> None:
        """The `lanes top` capture in docs/stats.md is this frame (trailing spaces trimmed)."""
        page = Path(__file__).resolve().parents[2] / "docs" / "stats.md"
        capture = page.read_text(encoding="utf-8").split("```text\n")[1].split("```")[0]
        shown = _render(_snapshot(), 110, _queue())
        frame = "\n".join(line.rstrip() for line in shown.splitlines())
        assert capture.strip("\n") == frame.strip("\n")
