"""The /stats schema is a public contract: code, docs/stats.md and live answers agree exactly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from proxy.lanes.placement import Host
from proxy.lanes.queue import LaneQueue
from proxy.stats.schema import StatsView
from proxy.stats.warnings import HINTS
from tests.stats.helpers import Clock, make_stats, view_of
from tests.work import python_lines

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
# Map keys in the docs/stats.md table, by the field that holds the map.
_MAP_KEYS = {
    "by_class": "<class>",
    "by_client": "<client>",
    "clients": "<client>",
    "models": "<model>",
    "failed_by_reason": "<reason>",
    "rejected_by_reason": "<reason>",
    "upstreams": "<upstream>",
    "pins": "<model>",
    "numbers": "<number>",
}


def _stats_page() -> str:
    return (ROOT / "docs" / "stats.md").read_text(encoding="utf-8")


def _documented() -> set[str]:
    table = _stats_page().split("## `/stats` fields")[1].split("## Warnings")[0]
    return set(re.findall(r"^\| `([^`]+)` \|", table, flags=re.MULTILINE))


def _strip_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        path, kind = f"{prefix}{name}", _strip_none(field.annotation)
        origin, args = get_origin(kind), get_args(kind)
        if origin is list and not issubclass(args[0], BaseModel):
            out.add(f"{path}[]")
        elif origin is list:
            out |= _paths(args[0], f"{path}[].")
        elif origin is dict:
            key = f"{path}.{_MAP_KEYS[name]}"
            is_model = isinstance(args[1], type) and issubclass(args[1], BaseModel)
            out |= _paths(args[1], f"{key}.") if is_model else {key}
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            out |= _paths(kind, f"{path}.")
        else:
            out.add(path)
    return out


class TestSchema:
    def test_keys_match_the_docs_exactly(self) -> None:
        """Every /stats key is documented in docs/stats.md's table, and nothing else is."""
        assert _paths(StatsView) == _documented()

    def test_required_top_level_keys(self) -> None:
        """Other tools read lanes.configured, version and uptime_s."""
        assert {"lanes.configured", "lanes.busy", "lanes.free", "version", "uptime_s"} <= _paths(
            StatsView
        )

    def test_recorded_snapshot_fits_the_schema(self) -> None:
        """The real example in docs/stats.md validates with no extra or missing key."""
        doc = json.loads((DATA / "stats_snapshot.json").read_text(encoding="utf-8"))
        assert StatsView.model_validate(doc).model_dump(mode="json") == doc
        documented = _stats_page().split("```json\n")[1].split("```")[0]
        assert json.loads(documented) == doc

    def test_docs_list_every_warning_with_its_hint(self) -> None:
        """Each warning kind and its exact hint appear in docs/stats.md."""
        section = _stats_page()
        for kind, hint in HINTS.items():
            assert f"| `{kind}` |" in section
            assert hint in section

    def test_fast_with_ten_thousand_queued(self) -> None:
        """With 10,000 requests queued by 1,000 clients, a view stays small and does no
        more work than with 1,000 queued: it reads counters, never the queue."""
        shallow, _ = self._view_with_queue(1_000)
        deep, body = self._view_with_queue(10_000)
        assert deep <= shallow * 1.1  # lines of Python run; the same count today
        doc = json.loads(body)
        assert doc["queue"]["depth"] == 10_000
        assert len(doc["queue"]["by_client"]) == 20
        assert len(body) < 64_000

    @staticmethod
    def _view_with_queue(queued: int) -> tuple[int, str]:
        """(lines of Python run, JSON body) of one /stats view with `queued` waiting."""
        clock = Clock()
        stats = make_stats(clock, max_queue=20_000)
        queue = LaneQueue([Host("default", 2)], max_queue=20_000, aging_s=30.0, affinity_wait_s=0)
        for rid in range(queued + 2):
            client = f"client-{rid % 1000}"
            queue.submit(client, "batch", clock())
            stats.request_received(
                rid, client=client, priority="batch", model="m", route="/api/chat", now=clock()
            )
        for ticket in queue.admit(clock()):
            stats.request_admitted(
                ticket.id, host="default", lane=ticket.lane or 0, options={}, now=clock()
            )
        body, lines = python_lines(lambda: view_of(stats, queue.snapshot()).model_dump_json())
        return lines, body


def test_pure_modules_do_not_import_aiohttp() -> None:
    """Aggregation, the view and the metrics rendering stay free of aiohttp."""
    modules = [
        "proxy.stats.ledger",
        "proxy.stats.schema",
        "proxy.stats.metrics",
        "proxy.stats.warnings",
    ]
    code = f"import sys; import {', '.join(modules)}; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
