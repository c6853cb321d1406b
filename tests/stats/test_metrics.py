"""/metrics rendering: the same view as /stats, through prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from proxy.stats.ledger import Ledger
from proxy.stats.metrics import Metrics
from proxy.stats.verdict import KINDS
from tests.stats.helpers import (
    Clock,
    final_line,
    make_stats,
    ndjson_body,
    run_request,
    snapshot,
    view_of,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(metrics: Metrics) -> Samples:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _busy_stats(clock: Clock) -> Ledger:
    stats = make_stats(clock)
    for rid, client in enumerate(["alice", "bob", "bob"], start=1):
        body = ndjson_body(4, final_line(prompt=50, output=4))
        run_request(stats, clock, rid, client=client, chunks=body, wait_s=0.25)
    run_request(stats, clock, 4, outcome="failed", status=500)
    return stats


class TestMetrics:
    def test_values_agree_with_the_view(self) -> None:
        """Counters, gauges and histograms carry the numbers /stats shows."""
        clock = Clock()
        stats = _busy_stats(clock)
        metrics = Metrics(lambda: view_of(stats, snapshot(depth=3, busy=2)))
        stats.observers.append(metrics.observe)
        run_request(stats, clock, 5, wait_s=0.5)
        view = view_of(stats, snapshot(depth=3, busy=2))
        got = _samples(metrics)
        assert got[("lanes_requests_received_total", ())] == view.counters.received == 5
        assert got[("lanes_requests_completed_total", ())] == view.counters.completed == 4
        assert got[("lanes_requests_failed_by_reason_total", (("reason", "failed"),))] == 1
        assert got[("lanes_upstream_errors_total", ())] == view.counters.upstream_errors == 1
        assert got[("lanes_eval_tokens_total", ())] == view.tokens.eval_tokens == 12
        assert got[("lanes_queue_depth", ())] == 3
        assert got[("lanes_queue_depth_by_class", (("class", "normal"),))] == 3
        assert got[("lanes_lanes_busy", ())] == 2
        assert got[("lanes_lanes_free", ())] == 0
        assert (
            got[("lanes_utilization_ratio", (("window", "1m"),))] == view.utilization.busy_ratio_1m
        )
        assert got[("lanes_model_requests_total", (("model", "m"),))] == 5
        p50 = view.latency.queue_wait_ms.p50
        assert p50 is not None
        assert (
            got[("lanes_latency_window_seconds", (("kind", "queue_wait"), ("quantile", "0.5")))]
            == p50 / 1000
        )
        labels = (("model", "m"), ("priority", "normal"), ("route", "/api/generate"))
        assert got[("lanes_queue_wait_seconds_count", labels)] == 1
        assert got[("lanes_queue_wait_seconds_bucket", (("le", "0.5"), *labels))] == 1
        assert not any(name.startswith("lanes_client_") for name, _ in got)

    def test_client_labels_only_when_enabled(self) -> None:
        """With client labels on, per-client series and a client label appear."""
        clock = Clock()
        stats = _busy_stats(clock)
        metrics = Metrics(lambda: view_of(stats), client_labels=True)
        stats.observers.append(metrics.observe)
        run_request(stats, clock, 9, client="carol")
        got = _samples(metrics)
        assert got[("lanes_client_requests_total", (("client", "bob"),))] == 2
        key = (
            ("client", "carol"),
            ("model", "m"),
            ("priority", "normal"),
            ("route", "/api/generate"),
        )
        assert got[("lanes_request_seconds_count", key)] == 1

    def test_registries_are_per_app(self) -> None:
        """Two apps in one process each have their own registry and series."""
        clock = Clock()
        first, second = make_stats(clock), make_stats(clock)
        run_request(first, clock, 1)
        a, b = Metrics(lambda: view_of(first)), Metrics(lambda: view_of(second))
        assert _samples(a)[("lanes_requests_received_total", ())] == 1
        assert _samples(b)[("lanes_requests_received_total", ())] == 0

    def test_verdict_is_one_gauge_per_kind(self) -> None:
        """lanes_verdict has all eight kinds: 1 for the primary verdict, 0 for the others."""
        clock = Clock()
        stats = make_stats(clock)
        run_request(stats, clock, 1)
        got = _samples(Metrics(lambda: view_of(stats)))
        gauges = {
            dict(labels)["kind"]: value
            for (name, labels), value in got.items()
            if name == "lanes_verdict"
        }
        assert gauges == {kind: float(kind == "client_bound") for kind in KINDS}
