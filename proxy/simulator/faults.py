"""Fault injection: what goes wrong with one request, decided up front from the settings."""

from __future__ import annotations

import random
from dataclasses import dataclass

from proxy.simulator.catalog import ModelSpec
from proxy.simulator.settings import SimulatorSettings

__all__ = ["RUNNER_ERROR", "FaultPlan", "plan_faults"]

RUNNER_ERROR = "an error was encountered while running the model"


@dataclass(frozen=True)
class FaultPlan:
    """The faults one request will suffer; all off by default.

    - busy: answered at once with the 503 queue-full body.
    - hang_s: holds its slot this long before the first byte.
    - slow_first_token_s: extra delay after prefill, before the first token.
    - error_after: fail; None = no error, 0 = a 500 before any byte, N = after N chunks
      (a 200 with a trailing error line; non-streaming requests always get the 500).
    - drop_after: close the connection after N chunks (non-streaming: before any byte).
    - malformed: a malformed NDJSON line mid-stream; with `format`, broken JSON content.
    """

    busy: bool = False
    hang_s: float = 0.0
    slow_first_token_s: float = 0.0
    error_after: int | None = None
    drop_after: int | None = None
    malformed: bool = False

    @property
    def any(self) -> bool:
        return self != FaultPlan()


def _roll(rng: random.Random, rate: float) -> bool:
    return rate >= 1.0 or (rate > 0.0 and rng.random() < rate)


def plan_faults(settings: SimulatorSettings, spec: ModelSpec, rng: random.Random) -> FaultPlan:
    """Roll the dice for one request of `spec`."""

    def get(name: str) -> float:
        value = settings.fault(spec, name)
        return 0.0 if value is None else float(value)

    hang = get("fault_hang_s")
    drop = settings.fault(spec, "fault_drop_after_chunks")
    return FaultPlan(
        busy=_roll(rng, get("fault_busy_rate")),
        hang_s=hang if hang > 0 and _roll(rng, get("fault_hang_rate")) else 0.0,
        slow_first_token_s=get("fault_slow_first_token_s"),
        error_after=(
            int(get("fault_error_after_chunks")) if _roll(rng, get("fault_error_rate")) else None
        ),
        drop_after=(int(drop) if drop is not None and _roll(rng, get("fault_drop_rate")) else None),
        malformed=_roll(rng, get("fault_malformed_rate")),
    )
