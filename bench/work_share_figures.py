"""Scenario 5's figures (pure): what each client got in a run, in served tokens and waits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.figures import percentile, ratio

__all__ = ["CLIENTS", "QUEUE_MS", "ClientRun", "Variant", "VariantRun", "client_run", "find_run"]

CLIENTS = ("editor", "chat")
QUEUE_MS = "X-Lanes-Queue-Ms"
_SERVICE_KEYS = ("load_duration", "prompt_eval_duration", "eval_duration")


@dataclass(frozen=True)
class Variant:
    """One run's set-up: fairness policy, aging (uncompressed seconds), weights, lanes."""

    fairness: str
    aging_s: float
    weights: tuple[tuple[str, float], ...] = ()
    lanes: int = 1  # the proxy's lanes and Ollama's slots (OLLAMA_NUM_PARALLEL)

    @property
    def label(self) -> str:
        weights = "".join(f", {key} ×{w:g}" for key, w in self.weights)
        lanes = f"{self.lanes} lane" + ("s" if self.lanes > 1 else "")
        return f"{self.fairness}{weights} · {lanes} · aging {self.aging_s:g} s"

    @property
    def short(self) -> str:
        """A label narrow enough for the chart's x axis."""
        weights = "".join(f" {key}×{w:g}" for key, w in self.weights)
        return f"{self.fairness[:3]}{weights} {self.lanes}L {self.aging_s:g}s"

    def flags(self, scale: float) -> list[str]:
        """`lanes serve` flags; aging is compressed like every other duration."""
        flags = [f"--fairness={self.fairness}", f"--aging-s={self.aging_s / scale:g}"]
        return flags + [f"--client-weight={key}={w:g}" for key, w in self.weights]


@dataclass
class ClientRun:
    """What one client got in one run, from the requests that ended inside the window."""

    client: str
    requests: int
    cut: int  # requests still running when the window closed (not counted)
    prompt_tokens: int
    output_tokens: int
    served: float  # w_in x prompt + w_out x output
    aged: int  # requests that waited aging_s or more (moved up a class)
    wait_p50_s: float
    wait_p95_s: float
    total_p50_s: float
    total_p95_s: float
    service_p50_s: float  # Ollama's load + prompt-eval + eval durations, median


@dataclass
class VariantRun:
    """One run of both clients against one proxy configuration."""

    variant: Variant
    clients: dict[str, ClientRun] = field(default_factory=dict)

    def share(self, client: str) -> float:
        """The client's share of all served tokens in this run (0-1)."""
        total = sum(c.served for c in self.clients.values())
        return ratio(self.clients[client].served, total)


def client_run(
    client: str,
    result: Mapping[str, Any],
    until: float,
    costs: tuple[float, float],
    aging_s: float,
) -> ClientRun:
    """Figures of one load-generator result, counting requests that ended by `until`;
    `costs` is (w_in, w_out), `aging_s` the proxy's (as measured, so compressed)."""
    w_in, w_out = costs
    rows = [
        (start, latency, metrics, headers)
        for start, latency, metrics, headers in zip(
            result["starts"], result["latencies"], result["metrics"], result["headers"], strict=True
        )
        if start + latency <= until
    ]
    prompt = sum(int(m.get("prompt_eval_count", 0)) for _, _, m, _ in rows)
    output = sum(int(m.get("eval_count", 0)) for _, _, m, _ in rows)
    waits = [int(h[QUEUE_MS]) / 1000 for _, _, _, h in rows if QUEUE_MS in h]
    totals = [latency for _, latency, _, _ in rows]
    service = [sum(m.get(k, 0.0) for k in _SERVICE_KEYS) for _, _, m, _ in rows]
    return ClientRun(
        client=client,
        requests=len(rows),
        cut=len(result["latencies"]) - len(rows),
        prompt_tokens=prompt,
        output_tokens=output,
        served=w_in * prompt + w_out * output,
        aged=sum(1 for w in waits if w >= aging_s),
        wait_p50_s=percentile(waits, 50),
        wait_p95_s=percentile(waits, 95),
        total_p50_s=percentile(totals, 50),
        total_p95_s=percentile(totals, 95),
        service_p50_s=percentile(service, 50),
    )


def find_run(
    runs: Sequence[VariantRun], fairness: str, aging_s: float, lanes: int
) -> VariantRun | None:
    """The unweighted run with this policy, aging and lane count, if there is one."""
    wanted = Variant(fairness, aging_s, (), lanes)
    return next((r for r in runs if r.variant == wanted), None)
