"""What `lanes stats` and `lanes top` show: /stats as tables, and the live view."""

from __future__ import annotations

import asyncio
import io

import pytest
from rich.console import Console

from proxy.stats.tables import render_tables, show_stats
from proxy.stats.top import run_top
from proxy.status import ExitStatus
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.waiting import PATIENCE_S, wait_for


def rendered(doc: dict[str, object]) -> str:
    """`render_tables(doc)` as plain text."""
    out = io.StringIO()
    Console(file=out, width=120, color_system=None, force_terminal=False).print(render_tables(doc))
    return out.getvalue()


class TestRenderTables:
    def test_nested_fields_become_dotted_rows(self) -> None:
        """Each plain value is a row named by its path; a small dict of plain values is one row."""
        text = rendered({"lanes": {"configured": 2, "busy": 0}, "counters": {"completed": 5}})
        assert "lanes.configured" in text
        assert "counters.completed" in text

    def test_per_key_sections_are_tables(self) -> None:
        """`clients` and `models` become tables with one row per name."""
        text = rendered({"clients": {"miner": {"completed": 3}}, "models": {}})
        assert "clients" in text
        assert "miner" in text

    def test_the_verdict_comes_first(self) -> None:
        """The verdict and its fix are printed before the table of fields."""
        verdict = {"kind": "client_bound", "explanation": "Few.", "fix": "More.", "numbers": {}}
        text = rendered({"lanes": {"configured": 2}, "verdict": verdict, "secondary": []})
        assert text.index("verdict  client_bound: Few.") < text.index("lanes.configured")
        assert "fix: More." in text
        assert "verdict.kind" not in text

    def test_no_warnings_says_so(self) -> None:
        """An empty warnings list is shown as "no warnings"."""
        assert "no warnings" in rendered({"warnings": []})


class TestShowStats:
    async def test_tables_of_a_live_proxy(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A running proxy's /stats is printed as tables; the status is success."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=2)
        out = io.StringIO()
        status = await show_stats(base_url(prx), Console(file=out, width=120))
        assert status == ExitStatus.SUCCESS
        assert "lanes.configured" in out.getvalue()

    async def test_unreachable(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No proxy: one line on stderr and exit status 3."""
        console = Console(file=io.StringIO())
        status = await show_stats("http://127.0.0.1:9", console)
        assert status == ExitStatus.UNAVAILABLE
        err = capsys.readouterr().err
        assert err.startswith("lanes: http://127.0.0.1:9/stats did not answer")
        assert err.count("\n") == 1


class TestTop:
    async def test_draws_frames_until_cancelled(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """`lanes top` off a terminal draws frames of the live proxy and stops when cancelled."""
        sim = await simulator()
        prx = await proxy(base_url(sim), lanes=2)
        out = io.StringIO()
        console = Console(file=out, width=100, color_system=None, force_terminal=False)
        task = asyncio.create_task(run_top(base_url(prx), console=console))
        await wait_for(
            lambda: "lanes 0/2 busy" in out.getvalue(),
            timeout=PATIENCE_S,
            what=lambda: f"a frame with 'lanes 0/2 busy' in {out.getvalue()[-400:]!r}",
            interval=0.05,
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "lanes 0/2 busy" in out.getvalue()
