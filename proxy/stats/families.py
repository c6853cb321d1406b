"""Metric families built from a `StatsView`: the helpers, the lane map and the fair share."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from proxy.stats.schema import StatsView

__all__ = ["fair_share", "gauge", "labelled", "lane_map"]


def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[])
    if value is not None:
        family.add_metric([], value)
    return family


def labelled(
    family: GaugeMetricFamily | CounterMetricFamily, rows: Iterable[tuple[list[str], float]]
) -> GaugeMetricFamily | CounterMetricFamily:
    for labels, value in rows:
        family.add_metric(labels, value)
    return family


def lane_map(v: StatsView) -> Iterable[Metric]:
    """Each host's lane map: NUM_PARALLEL, and per model the lanes, why, and how many held."""
    rows = v.upstreams.items()
    yield labelled(
        GaugeMetricFamily(
            "lanes_host_num_parallel",
            "OLLAMA_NUM_PARALLEL of a host, as read (source: ollama-env, config).",
            labels=["upstream", "source"],
        ),
        (
            ([host, row.num_parallel_source], float(row.num_parallel))
            for host, row in rows
            if row.num_parallel is not None
        ),
    )
    models = [(host, name, m) for host, row in rows for name, m in row.models.items()]
    yield labelled(
        GaugeMetricFamily(
            "lanes_model_lanes",
            "Requests the proxy sends a model at once on a host, with the number's source.",
            labels=["upstream", "model", "source"],
        ),
        (([host, name, m.source], float(m.lanes)) for host, name, m in models),
    )
    yield labelled(
        GaugeMetricFamily(
            "lanes_model_ollama_lanes",
            "Requests Ollama runs a model with at once, by the lane map's rules.",
            labels=["upstream", "model", "source"],
        ),
        (([host, name, m.ollama_source], float(m.ollama_lanes)) for host, name, m in models),
    )
    yield labelled(
        GaugeMetricFamily(
            "lanes_model_busy", "Lanes a model holds on a host now.", labels=["upstream", "model"]
        ),
        (([host, name], float(m.busy)) for host, name, m in models),
    )


def fair_share(v: StatsView) -> Iterable[Metric]:
    """Per client (only with client labels): served tokens and the fair-share counter."""
    rows = v.clients.items()
    yield labelled(
        CounterMetricFamily(
            "lanes_client_served_tokens",
            "Served tokens per client: w_in x prompt + w_out x output.",
            labels=["client"],
        ),
        (([k], c.served_tokens) for k, c in rows),
    )
    yield labelled(
        GaugeMetricFamily(
            "lanes_client_service_counter",
            "Each client's fair-share counter (lowest goes next in its class).",
            labels=["client"],
        ),
        (([k], c.service_counter) for k, c in rows if c.service_counter is not None),
    )
