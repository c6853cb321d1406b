"""The lane map in /stats, /metrics and the upstream_queueing warning (pure)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from proxy.lanes.lanemap import Parallel
from proxy.lanes.placement import Host
from proxy.lanes.queue import LaneQueue
from proxy.stats.metrics import Metrics
from proxy.stats.warnings import queueing_cause
from tests.stats.helpers import Clock, final_line, make_stats, ndjson_body, run_request, view_of

A, E = "llama3.2:latest", "all-minilm:latest"


def _queue(cap: int | None) -> LaneQueue:
    host = Host("default", cap, parallel=Parallel(4, "ollama-env", "/proc/1/environ"))
    queue = LaneQueue([host], max_queue=100, aging_s=30.0, affinity_wait_s=0.0)
    queue.observe_model("default", A, capabilities=("completion",), architecture="llama")
    queue.observe_model("default", E, capabilities=("embedding",), architecture="bert")
    for model in (A, A, E):
        queue.submit("c", "normal", 0.0, model=model)
    queue.admit(0.0)
    return queue


class TestStatsRows:
    def test_each_model_row_has_its_lanes_source_and_busy(self) -> None:
        """upstreams.<name> shows NUM_PARALLEL with its source, and a row per model."""
        clock = Clock()
        view = view_of(make_stats(clock), _queue(None).snapshot())
        row = view.upstreams["default"]
        assert (row.cap, row.num_parallel, row.num_parallel_source) == (None, 4, "ollama-env")
        assert row.num_parallel_detail == "/proc/1/environ"
        got = {m: (r.lanes, r.source, r.busy) for m, r in row.models.items()}
        assert got == {A: (4, "ollama-env", 2), E: (1, "rule:embedding", 1)}

    def test_a_hand_set_cap_shows_what_ollama_would_run(self) -> None:
        """With lanes 4 by hand the embedding row says 4 (config) and Ollama's 1 beside it."""
        view = view_of(make_stats(Clock()), _queue(4).snapshot())
        row = view.upstreams["default"].models[E]
        assert (row.lanes, row.source, row.ollama_lanes, row.ollama_source) == (
            4,
            "config",
            1,
            "rule:embedding",
        )

    def test_metrics_carry_the_map(self) -> None:
        """/metrics has lanes_model_lanes with the source, and lanes_host_num_parallel."""
        stats, snapshot = make_stats(Clock()), _queue(None).snapshot()
        metrics = Metrics(lambda: view_of(stats, snapshot))
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(metrics.render().decode())
            for s in family.samples
        }
        key = (("model", E), ("source", "rule:embedding"), ("upstream", "default"))
        assert samples[("lanes_model_lanes", key)] == 1.0
        host = (("source", "ollama-env"), ("upstream", "default"))
        assert samples[("lanes_host_num_parallel", host)] == 4.0


class TestQueueingCause:
    def test_the_warning_names_the_model_and_the_cause(self) -> None:
        """A request that waited inside Ollama, for a model the proxy over-sends, says so."""
        clock = Clock()
        stats = make_stats(clock, upstream_queue_warn_ms=500.0)
        stats.observe_queue(_queue(4).snapshot(), clock())
        body = ndjson_body(3, final_line(prompt=10, output=3, prompt_ms=5.0, eval_ms=30.0))
        run_request(stats, clock, 1, model=E, chunks=body, first_byte_s=1.5, run_s=1.6)
        (warning,) = view_of(stats).warnings
        assert warning.kind == "upstream_queueing"
        assert f"model {E}" in warning.latest
        assert "the proxy sends up to 4 at once (config)" in warning.latest
        assert f"Ollama runs {E} with 1 (rule:embedding)" in warning.latest

    def test_causes_by_what_the_map_says(self) -> None:
        """Unknown NUM_PARALLEL and agreeing numbers each name their own likely cause."""
        snapshot = _queue(None).snapshot()
        rows = {m.name: m for m in snapshot.hosts[0].models}
        assert "another client" in queueing_cause(A, rows[A])
