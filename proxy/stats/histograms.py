"""Latency histograms for /metrics, kept as plain counts: the exposition of prometheus-client's
Histogram (buckets, count, sum, created), at a fraction of its cost per observation.

prometheus-client's Histogram takes two locks and walks its buckets in Python for every value;
the request path observes three per request. Here an observation is one bisect and two
additions; the same samples are rendered when /metrics is read.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_go_float: Callable[[float], str] = floatToGoString  # untyped upstream; a `le` label value

__all__ = ["LATENCY_BUCKETS", "Histograms"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# prometheus-client's switch for the `_created` series, read the way it reads it.
_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in (
    "true",
    "1",
    "t",
)


class _Series:
    """One label set of one histogram: counts per bucket (not cumulative), sum, created."""

    __slots__ = ("counts", "created", "total")

    def __init__(self, buckets: int, created: float) -> None:
        self.counts = [0] * buckets
        self.total = 0.0
        self.created = created


class Histograms(Collector):
    """Several histograms over the same label names and buckets, observed together."""

    def __init__(
        self,
        families: Sequence[tuple[str, str]],
        labels: Sequence[str],
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self._families = tuple(families)  # (name, documentation), in exposition order
        self._labels = tuple(labels)
        self._bounds = (*(float(b) for b in buckets), float("inf"))
        self._series: dict[tuple[str, ...], tuple[_Series, ...]] = {}

    def series(self, values: tuple[str, ...]) -> tuple[_Series, ...]:
        """The series of every family for these label values (made on first use)."""
        found = self._series.get(values)
        if found is None:
            now = time.time()
            found = tuple(_Series(len(self._bounds), now) for _ in self._families)
            self._series[values] = found
        return found

    def observe(self, series: _Series, value: float) -> None:
        """Count `value` in the first bucket whose bound is at least `value`."""
        series.counts[bisect_left(self._bounds, value)] += 1
        series.total += value

    def collect(self) -> Iterable[Metric]:
        les = [_go_float(b) for b in self._bounds]
        for index, (name, doc) in enumerate(self._families):
            family = Metric(name, doc, "histogram")
            for values, every in self._series.items():
                labels = dict(zip(self._labels, values, strict=True))
                series = every[index]
                acc = 0.0
                for le, count in zip(les, series.counts, strict=True):
                    acc += count
                    family.add_sample(name + "_bucket", {**labels, "le": le}, acc)
                family.add_sample(name + "_count", labels, acc)
                family.add_sample(name + "_sum", labels, series.total)
                if _CREATED:
                    family.add_sample(name + "_created", labels, series.created)
            yield family
