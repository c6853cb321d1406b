"""Prometheus exposition: a collector over the same `StatsView` as `/stats`, plus histograms."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy.stats.families import fair_share, gauge, labelled, lane_map
from proxy.stats.histograms import Histograms
from proxy.stats.records import Finished
from proxy.stats.schema import Breakdown, StatsView
from proxy.stats.verdict import KINDS

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "ViewCollector"]


class ViewCollector(Collector):
    """Turns one fresh `StatsView` per scrape into gauges and counters named `lanes_*`."""

    def __init__(self, view: Callable[[], StatsView], *, client_labels: bool = False) -> None:
        self._view = view
        self._client_labels = client_labels

    def collect(self) -> Iterable[Metric]:
        v = self._view()
        yield gauge("lanes_uptime_seconds", "Seconds since the proxy started.", v.uptime_s)
        yield from self._lanes_and_queue(v)
        yield from self._requests(v)
        yield from self._latency(v)
        yield from self._tokens(v)
        yield labelled(
            GaugeMetricFamily(
                "lanes_utilization_ratio", "Busy over available lane-seconds.", labels=["window"]
            ),
            [(["1m"], v.utilization.busy_ratio_1m), (["5m"], v.utilization.busy_ratio_5m)],
        )
        yield from self._upstream(v)
        yield labelled(
            CounterMetricFamily("lanes_warnings", "Warnings seen, by kind.", labels=["kind"]),
            (([w.kind], w.count) for w in v.warnings),
        )
        yield from self._hosts(v)
        yield labelled(
            GaugeMetricFamily(
                "lanes_verdict",
                "1 for the kind of the primary verdict (what limits throughput), 0 for the others.",
                labels=["kind"],
            ),
            (([kind], float(kind == v.verdict.kind)) for kind in KINDS),
        )
        yield from self._breakdowns("model", v.models)
        if self._client_labels:
            yield from self._breakdowns("client", v.clients)
            yield from fair_share(v)

    @staticmethod
    def _lanes_and_queue(v: StatsView) -> Iterable[Metric]:
        yield gauge("lanes_lanes_configured", "Lanes the proxy sends upstream.", v.lanes.configured)
        yield gauge("lanes_lanes_busy", "Lanes held by running requests.", v.lanes.busy)
        yield gauge("lanes_lanes_free", "Lanes not held.", v.lanes.free)
        yield gauge("lanes_queue_depth", "Requests waiting for a lane.", v.queue.depth)
        yield gauge(
            "lanes_queue_max", "Queue length beyond which requests get 503.", v.queue.max_queue
        )
        oldest = v.queue.oldest_wait_ms
        yield gauge(
            "lanes_queue_oldest_wait_seconds",
            "How long the oldest waiting request has waited.",
            0.0 if oldest is None else oldest / 1000.0,
        )
        yield labelled(
            GaugeMetricFamily(
                "lanes_queue_depth_by_class", "Waiting requests per class.", labels=["class"]
            ),
            (([k], n) for k, n in v.queue.by_class.items()),
        )

    @staticmethod
    def _requests(v: StatsView) -> Iterable[Metric]:
        c = v.counters
        for name, doc, value in (
            ("received", "Requests that entered the proxy.", c.received),
            ("admitted", "Requests that got a lane.", c.admitted),
            ("completed", "Requests that finished normally.", c.completed),
            ("failed", "Requests that failed after getting a lane.", c.failed),
            ("rejected", "Requests answered 503 without a lane.", c.rejected),
            ("cancelled_while_queued", "Clients that left while queued.", c.cancelled_while_queued),
            (
                "cancelled_while_running",
                "Clients that left while running.",
                c.cancelled_while_running,
            ),
            (
                "client_stalled",
                "Clients that stopped reading and lost their answer and lane.",
                c.client_stalled,
            ),
        ):
            yield CounterMetricFamily(f"lanes_requests_{name}", doc, value=value)
        yield CounterMetricFamily(
            "lanes_upstream_errors",
            "Upstream 5xx, connection failures and error lines.",
            value=c.upstream_errors,
        )
        for name, table in (("failed", c.failed_by_reason), ("rejected", c.rejected_by_reason)):
            yield labelled(
                CounterMetricFamily(
                    f"lanes_requests_{name}_by_reason",
                    f"Requests {name}, by reason.",
                    labels=["reason"],
                ),
                (([k], n) for k, n in table.items()),
            )

    @staticmethod
    def _upstream(v: StatsView) -> Iterable[Metric]:
        yield gauge(
            "lanes_upstream_reachable",
            "1 if the last poll of Ollama answered.",
            float(v.upstream.reachable),
        )
        yield labelled(
            GaugeMetricFamily(
                "lanes_upstream_context_length",
                "num_ctx per loaded model, from /api/ps.",
                labels=["model"],
            ),
            (
                ([m.name], m.context_length)
                for m in v.upstream.loaded_models
                if m.context_length is not None
            ),
        )

    @staticmethod
    def _hosts(v: StatsView) -> Iterable[Metric]:
        rows = v.upstreams.items()
        for name, doc, kind, get in (
            ("lanes_host_lanes", "Lanes per Ollama host.", GaugeMetricFamily, "lanes"),
            ("lanes_host_busy", "Lanes held per Ollama host.", GaugeMetricFamily, "busy"),
            ("lanes_host_healthy", "1 if the host takes requests.", GaugeMetricFamily, "healthy"),
            ("lanes_host_requests", "Requests bound per host.", CounterMetricFamily, "requests"),
            ("lanes_host_swaps", "Model swaps per host.", CounterMetricFamily, "swaps"),
            ("lanes_host_errors", "Failures per host.", CounterMetricFamily, "errors"),
        ):
            yield labelled(
                kind(name, doc, labels=["upstream"]),
                (([host], float(getattr(row, get))) for host, row in rows),
            )
        yield labelled(
            GaugeMetricFamily(
                "lanes_host_loaded_model",
                "1 per model loaded on a host.",
                labels=["upstream", "model"],
            ),
            (([host, m.name], 1.0) for host, row in rows for m in row.loaded_models),
        )
        yield from lane_map(v)
        yield labelled(
            CounterMetricFamily(
                "lanes_pinned_requests", "Requests whose options a pin changed.", labels=["model"]
            ),
            (([model], pin.pinned) for model, pin in v.pins.items()),
        )

    @staticmethod
    def _latency(v: StatsView) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "lanes_latency_window_seconds",
            f"Latency percentiles over the last {v.latency.window_s:g} s.",
            labels=["kind", "quantile"],
        )
        for kind, p in (
            ("queue_wait", v.latency.queue_wait_ms),
            ("first_byte", v.latency.first_byte_ms),
            ("total", v.latency.total_ms),
        ):
            for q, value in (("0.5", p.p50), ("0.95", p.p95), ("0.99", p.p99)):
                if value is not None:
                    family.add_metric([kind, q], value / 1000.0)
        yield family

    @staticmethod
    def _tokens(v: StatsView) -> Iterable[Metric]:
        t = v.tokens
        yield CounterMetricFamily(
            "lanes_prompt_tokens", "Prompt tokens from final chunks.", value=t.prompt_tokens
        )
        yield CounterMetricFamily(
            "lanes_eval_tokens", "Generated tokens from final chunks.", value=t.eval_tokens
        )
        yield gauge(
            "lanes_prefill_tokens_per_second",
            "Prefill speed, last 5 minutes.",
            t.prefill_tokens_per_s,
        )
        yield gauge(
            "lanes_decode_tokens_per_second", "Decode speed, last 5 minutes.", t.decode_tokens_per_s
        )
        yield labelled(
            GaugeMetricFamily(
                "lanes_output_tokens_per_second", "Output tokens per second.", labels=["window"]
            ),
            [(["1m"], t.output_tokens_per_s_1m), (["5m"], t.output_tokens_per_s_5m)],
        )

    @staticmethod
    def _breakdowns(label: str, table: Mapping[str, Breakdown]) -> Iterable[Metric]:
        rows = table.items()
        yield labelled(
            CounterMetricFamily(
                f"lanes_{label}_requests", f"Requests per {label}.", labels=[label]
            ),
            (([k], b.requests) for k, b in rows),
        )
        yield labelled(
            CounterMetricFamily(
                f"lanes_{label}_eval_tokens", f"Generated tokens per {label}.", labels=[label]
            ),
            (([k], b.eval_tokens) for k, b in rows),
        )
        yield labelled(
            CounterMetricFamily(
                f"lanes_{label}_prompt_tokens", f"Prompt tokens per {label}.", labels=[label]
            ),
            (([k], b.prompt_tokens) for k, b in rows),
        )


class Metrics:
    """One registry per app: the view collector and wait / first-byte / total histograms."""

    def __init__(self, view: Callable[[], StatsView], *, client_labels: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ViewCollector(view, client_labels=client_labels))
        self._client_labels = client_labels
        labels = ["model", "priority", "route"] + (["client"] if client_labels else [])
        self.histograms = Histograms(
            [
                ("lanes_queue_wait_seconds", "Time from arrival to a lane."),
                ("lanes_first_byte_seconds", "Time from a lane to the first upstream body byte."),
                ("lanes_request_seconds", "Time from arrival to the end."),
            ],
            labels,
        )
        self.registry.register(self.histograms)

    def observe(self, done: Finished) -> None:
        """Add one finished request to the histograms (a `Stats` observer)."""
        if self._client_labels:
            key: tuple[str, ...] = (done.model, done.priority, done.route, done.client)
        else:
            key = (done.model, done.priority, done.route)
        wait, first_byte, total = self.histograms.series(key)
        observe = self.histograms.observe
        observe(wait, done.wait_s)
        if done.first_byte_s is not None:
            observe(first_byte, done.first_byte_s)
        if done.outcome == "completed":
            observe(total, done.total_s)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
