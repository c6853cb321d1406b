"""Latency histograms: the exposition of prometheus-client's Histogram, from plain counts."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from proxy.stats.histograms import LATENCY_BUCKETS, Histograms

VALUES = (0.0, 0.005, 0.0051, 0.3, 1.0, 59.9, 600.0, 601.0, 1e-9)
LABELS = (("m", "normal", "/api/generate"), ('we"ird\\', "batch", "/v1/chat/completions"))


def _masked(text: bytes) -> str:
    """The exposition without the `_created` timestamps (each side stamps its own)."""
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text.decode())


class TestHistograms:
    def test_renders_what_prometheus_client_renders(self) -> None:
        """The same observations give the same exposition as prometheus-client's Histogram:
        buckets (the first bound at least the value, cumulative), count, sum and created."""
        ours_registry, theirs_registry = CollectorRegistry(), CollectorRegistry()
        names = [("lanes_a_seconds", "A."), ("lanes_b_seconds", "B.")]
        ours = Histograms(names, ["model", "priority", "route"])
        ours_registry.register(ours)
        theirs = [
            Histogram(name, doc, ["model", "priority", "route"], registry=theirs_registry,
                      buckets=LATENCY_BUCKETS)
            for name, doc in names
        ]  # fmt: skip
        for labels in LABELS:
            first, second = ours.series(labels)
            for value in VALUES:
                ours.observe(first, value)
                theirs[0].labels(*labels).observe(value)
            ours.observe(second, 2.5)
            theirs[1].labels(*labels).observe(2.5)
        assert _masked(generate_latest(theirs_registry)) == _masked(generate_latest(ours_registry))

    def test_empty_families_still_render(self) -> None:
        """Before any observation each family is announced with no samples, as before."""
        registry = CollectorRegistry()
        registry.register(Histograms([("lanes_a_seconds", "A.")], ["model"]))
        assert generate_latest(registry).decode() == (
            "# HELP lanes_a_seconds A.\n# TYPE lanes_a_seconds histogram\n"
        )
