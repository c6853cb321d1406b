"""The overhead scenario's plan and samples: what is measured, kept apart from how and how shown."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.figures import median

__all__ = ["Cell", "Plan", "Sample"]


@dataclass(frozen=True)
class Cell:
    """One load pattern: protocol, tiny or streamed, concurrency, request count."""

    protocol: str
    stream: bool
    concurrency: int
    requests: int

    @property
    def label(self) -> str:
        kind = "stream" if self.stream else "tiny"
        return f"{self.protocol} {kind} c={self.concurrency}"


@dataclass
class Sample:
    """One contender in one cell in one round."""

    p50: float
    p99: float
    ttfb_p50: float
    rps: float
    cpu_s: float
    requests: int
    chunks: int
    errors: int
    relay_p50: float = math.nan  # first byte to last byte, p50 (the relay of a stream)


@dataclass
class Plan:
    rounds: int
    concurrencies: tuple[int, ...]
    requests: dict[int, int]
    stream_concurrency: int
    stream_requests: int
    stream_chunks: int
    tiny_protocols: tuple[str, ...] = ("native", "v1")
    stream_protocols: tuple[str, ...] = ("native", "v1")
    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)

    def added(self, label: str, name: str, attr: str) -> float:
        """Median over rounds of (contender − direct) for `attr` in the same round."""
        runs = self.samples.get(label, {})
        mine, base = runs.get(name, []), runs.get("direct", [])
        return median(
            [getattr(m, attr) - getattr(b, attr) for m, b in zip(mine, base, strict=False)]
        )

    def mid(self, label: str, name: str, attr: str) -> float:
        """Median over rounds of `attr`."""
        return median([getattr(s, attr) for s in self.samples.get(label, {}).get(name, [])])

    def cpu_per_request(self, name: str, protocol: str, stream: bool) -> float:
        """CPU seconds of the contender's process per request, over all rounds and cells."""
        prefix = f"{protocol} {'stream' if stream else 'tiny'} "
        runs = [
            s
            for label, by in self.samples.items()
            if label.startswith(prefix)
            for s in by.get(name, [])
        ]
        reqs = sum(s.requests for s in runs)
        return sum(s.cpu_s for s in runs) / reqs if reqs else math.nan
