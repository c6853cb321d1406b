"""The lane map (pure): how many requests Ollama runs at once for each model, and why.

Ollama gives every loaded model `OLLAMA_NUM_PARALLEL` parallel slots (its lanes; 0 counts
as 1), except that it quietly runs some models with one slot, whatever NUM_PARALLEL says, and
only logs "model architecture does not currently support parallel requests". Read from
ollama/ollama `server/sched.go` (`Scheduler.load`), v0.33.0-rc2, August 2026:

- embedding models: `capabilities` (from `/api/show`) contains "embedding";
- the architectures in `ONE_LANE_ARCHITECTURES` (`model_info["general.architecture"]`).

The proxy's `model_lanes` setting overrides everything here (source `config`). Every number
the map gives carries its source:

- `ollama-env`: NUM_PARALLEL as the running Ollama has it (its process environment, or
  `launchctl getenv` / the systemd unit; unset means Ollama's default for its version);
- `rule:embedding`, `rule:architecture <arch>`: the one-slot rules above;
- `config`: the proxy's own settings (`model_lanes`, or `num_parallel` for a host whose
  environment cannot be read, such as a remote one);
- `assumed`: nothing could be read, so 1, the safe value (the proxy never sends a model more
  requests than Ollama runs; it may send fewer). Also for a model whose `/api/show` has not
  been answered yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ONE_LANE_ARCHITECTURES",
    "ModelLanes",
    "Parallel",
    "lanes_for",
    "parse_num_parallel",
]

ONE_LANE_ARCHITECTURES = frozenset(
    {
        "mllama",
        "qwen3vl",
        "qwen3vlmoe",
        "qwen35",
        "qwen35moe",
        "qwen3next",
        "lfm2",
        "lfm2moe",
        "nemotron_h",
        "nemotron_h_moe",
        "nemotron_h_omni",
    }
)
MAX_LANES = 256


@dataclass(frozen=True, slots=True)
class ModelLanes:
    """The lanes of one model on one host, and where the number came from."""

    lanes: int
    source: str


@dataclass(frozen=True, slots=True)
class Parallel:
    """A host's NUM_PARALLEL: the value (None: unknown), its source, and how it was read."""

    value: int | None
    source: str  # "ollama-env", "config" or "assumed"
    detail: str = ""  # where it was read, or why it could not be

    @classmethod
    def unknown(cls, why: str) -> Parallel:
        """Nothing could be read: every model gets 1 lane (`assumed`)."""
        return cls(None, "assumed", why)


def parse_num_parallel(raw: str | None, default: int | None) -> int | None:
    """Ollama's reading of OLLAMA_NUM_PARALLEL: unset or empty is `default` (its version's),
    0 and negatives act as 1, anything not a number is the default too."""
    text = (raw or "").strip().strip("\"'")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        return default
    return min(MAX_LANES, max(1, value))


def lanes_for(
    parallel: Parallel,
    *,
    capabilities: Iterable[str] | None,
    architecture: str | None,
    override: int | None = None,
) -> ModelLanes:
    """The lanes of one model. `capabilities` None: its `/api/show` is not known yet."""
    if override is not None:
        return ModelLanes(override, "config")
    if capabilities is None:
        return ModelLanes(1, "assumed")
    if "embedding" in capabilities:
        return ModelLanes(1, "rule:embedding")
    if architecture is not None and architecture.lower() in ONE_LANE_ARCHITECTURES:
        return ModelLanes(1, f"rule:architecture {architecture.lower()}")
    if parallel.value is None:
        return ModelLanes(1, "assumed")
    return ModelLanes(parallel.value, parallel.source)
