"""The bench's own parts: statistics, PNG charts, /proc readers, load generator, simhost."""

from __future__ import annotations

import os
import struct
import time
import zlib

import aiohttp
from pytest_aiohttp import AiohttpServer

from bench.chart import BarChart, render_png
from bench.figures import fifo_slots, percentile, ratio
from bench.lanes_busy import upstream_view
from bench.loadgen import LoadSpec, run_load
from bench.procs import cpu_seconds, peak_rss_bytes, process_tree, rss_bytes
from bench.profile import by_proxy_frame, summarize
from bench.simhost import build_app
from tests.fixtures_sim import SimulatorFactory, base_url, sim_settings


class TestFigures:
    def test_percentile_interpolates(self) -> None:
        """Linear interpolation between the two nearest ranks."""
        assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
        assert percentile([5.0], 99) == 5.0
        assert percentile([0.0, 10.0], 90) == 9.0

    def test_ratio_of_zero_is_nan(self) -> None:
        """No denominator, no ratio."""
        assert ratio(1.0, 0.0) != ratio(1.0, 0.0)

    def test_fifo_replay_of_waiting_requests(self) -> None:
        """Requests that were already waiting start the moment a slot frees: no gap."""
        timeline = [[0.0, 1.0], [0.0, 1.5], [0.1, 2.0], [0.2, 2.5]]
        slots = fifo_slots(timeline, 2)
        assert [(s, g) for s, _, g in slots] == [(0.0, None), (0.0, None), (1.0, 0.0), (1.5, 0.0)]

    def test_fifo_replay_of_late_requests(self) -> None:
        """A request arriving after its slot freed starts on arrival; the slot idled."""
        timeline = [[0.0, 1.0], [1.004, 2.0]]
        slots = fifo_slots(timeline, 1)
        assert slots[1][0] == 1.004
        assert round(slots[1][2] or 0.0, 6) == 0.004

    def test_upstream_view(self) -> None:
        """Utilization counts busy slot-seconds between the first and last start."""
        timeline = [[0.0, 1.0], [0.0, 1.0], [1.5, 2.0], [1.0, 2.0]]
        gaps, utilization, service = upstream_view(timeline, 2)
        assert [round(g, 3) for g in gaps] == [0.0, 0.5]
        assert round(utilization, 3) == round((1.0 + 1.0 + 0.5 + 0.0) / (2 * 1.5), 3)
        assert service == 1.0


class TestChart:
    def test_png_has_the_chart_size_and_decodes(self) -> None:
        """A PNG of the requested size whose rows decompress to width × 3 bytes plus a filter."""
        chart = BarChart("Title", "ms", ["a", "b"], [("x", [1.0, float("nan")]), ("y", [2.0, 3.0])])
        data = render_png(chart)
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (chart.width, chart.height)
        start = data.index(b"IDAT") + 4
        length = int.from_bytes(data[start - 8 : start - 4], "big")
        assert len(zlib.decompress(data[start : start + length])) == height * (width * 3 + 1)


class TestProc:
    def test_own_process_is_measured(self) -> None:
        """This process has used CPU and memory, and its tree includes itself."""
        pid = os.getpid()
        assert pid in process_tree(pid)
        assert cpu_seconds([pid]) > 0
        assert 0 < rss_bytes([pid]) <= peak_rss_bytes([pid])


class TestLoadGenerator:
    async def test_closed_loop_counts_requests_and_chunks(
        self, simulator: SimulatorFactory
    ) -> None:
        """Every request is timed once; streamed replies are counted line by line."""
        sim = await simulator(lanes=2, decode_tps=5000.0)
        body = {"model": "llama3.2", "prompt": "hi", "options": {"num_predict": 10}}
        spec = LoadSpec(url=base_url(sim), body=body, concurrency=2, requests=6, warmup=2)
        result = await run_load(spec)
        assert len(result.latencies) == 6
        assert result.statuses == {"200": 6}
        assert all(c == 11 for c in result.chunks)  # ten tokens and the final chunk
        assert all("eval_duration" in m for m in result.metrics)

    async def test_closed_loop_starts_nothing_after_until(
        self, simulator: SimulatorFactory
    ) -> None:
        """With `start_at` and `until`, every measured request starts between the two."""
        sim = await simulator(lanes=2, decode_tps=5000.0)
        body = {"model": "llama3.2", "prompt": "hi", "options": {"num_predict": 10}}
        start_at = time.monotonic() + 0.1
        until = start_at + 0.3
        spec = LoadSpec(
            url=base_url(sim), body=body, concurrency=2, requests=100_000, start_at=start_at,
            until=until,
        )  # fmt: skip
        result = await run_load(spec)
        assert result.latencies
        assert [s for s in result.starts if not start_at <= s < until] == []

    async def test_final_counts_and_kept_headers_are_recorded(
        self, simulator: SimulatorFactory
    ) -> None:
        """Each answer's prompt_eval_count and eval_count, and the headers asked for, are kept."""
        sim = await simulator(lanes=1, decode_tps=5000.0)
        body = {"model": "llama3.2", "prompt": "abcdefgh", "options": {"num_predict": 10}}
        spec = LoadSpec(url=base_url(sim), body=body, requests=2, keep_headers=["Content-Type"])
        result = await run_load(spec)
        counts = [(m["prompt_eval_count"], m["eval_count"]) for m in result.metrics]
        assert counts == [(2.0, 10.0), (2.0, 10.0)]
        assert [list(h) for h in result.headers] == [["Content-Type"], ["Content-Type"]]

    async def test_periodic_sends_on_schedule(self, simulator: SimulatorFactory) -> None:
        """Periodic mode sends `requests` requests, one per interval."""
        sim = await simulator(lanes=1)
        body = {"model": "llama3.2", "prompt": "hi", "stream": False}
        spec = LoadSpec(url=base_url(sim), body=body, mode="periodic", requests=3, interval_s=0.05)
        result = await run_load(spec)
        assert len(result.latencies) == 3
        assert result.starts == sorted(result.starts)
        assert result.wall_s >= 0.1


class TestSimhost:
    async def test_timeline_records_each_inference_request(
        self, aiohttp_server: AiohttpServer
    ) -> None:
        """One row per request, arrival before end; POST clears them."""
        server = await aiohttp_server(build_app(sim_settings(lanes=1)))
        url = base_url(server)
        body = {"model": "llama3.2", "prompt": "hi", "stream": False}
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/api/generate", json=body) as resp:
                assert resp.status == 200
            async with session.get(url + "/_bench/timeline") as resp:
                rows = (await resp.json())["requests"]
            assert len(rows) == 1
            arrived, ended = rows[0]
            assert arrived <= ended
            async with session.post(url + "/_bench/timeline") as resp:
                assert resp.status == 200
            async with session.get(url + "/_bench/timeline") as resp:
                assert (await resp.json())["requests"] == []


class TestProfileSummary:
    def test_hottest_frames_first(self) -> None:
        """Self time goes to the innermost frame; proxy frames are ranked inclusively."""
        raw = (
            "main (proxy/__main__.py:1);handle (proxy/handlers.py:5);write (aiohttp/x.py:9) 3\n"
            "main (proxy/__main__.py:1);log (structlog/y.py:2) 2\n"
        )
        lines = summarize(raw)
        assert lines[0] == "5 samples."
        assert lines[4] == "| 60.0% | `write (aiohttp/x.py:9)` |"
        assert "| 60.0% | `handle (proxy/handlers.py:5)` |" in lines
        assert not any("__main__" in line for line in lines)

    def test_each_sample_is_charged_to_its_deepest_proxy_frame(self) -> None:
        """A sample goes to the innermost proxy/ frame on its stack; one without any is marked
        as outside the proxy, under its innermost frame."""
        raw = (
            "main (proxy/a.py:1);relay (proxy/b.py:2);write (aiohttp/x.py:9) 3\n"
            "main (proxy/a.py:1);log (proxy/c.py:4) 1\n"
            "run (asyncio/e.py:7);poll (uvloop/f.py:8) 4\n"
        )
        assert by_proxy_frame(raw) == [
            "| share | deepest proxy/ frame |",
            "|---|---|",
            "| 50.0% | `(no proxy frame) poll (uvloop/f.py:8)` |",
            "| 37.5% | `relay (proxy/b.py:2)` |",
            "| 12.5% | `log (proxy/c.py:4)` |",
        ]
