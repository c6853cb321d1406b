"""The `/stats` schema: frozen pydantic models whose keys carry their units."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from proxy.ollama import LoadedModel

__all__ = [
    "Breakdown",
    "ClientBreakdown",
    "CountersView",
    "LaneRow",
    "LanesView",
    "LatencyView",
    "LoadedModel",
    "ModelLanesRow",
    "Percentiles",
    "PinView",
    "QueueView",
    "StatsView",
    "TokensView",
    "UpstreamView",
    "UpstreamsRow",
    "UtilizationView",
    "VerdictView",
    "WarningView",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LaneRow(_Frozen):
    """One busy lane: who holds it, for what, since when."""

    lane: int
    upstream: str
    client: str
    priority: str
    model: str
    route: str
    started_at_unix_s: float
    elapsed_ms: float
    tokens: int


class LanesView(_Frozen):
    """Configured lanes, how many are busy, and one row per busy lane."""

    configured: int
    busy: int
    free: int
    running: list[LaneRow]


class QueueView(_Frozen):
    """Requests waiting for a lane."""

    depth: int
    max_queue: int
    by_class: dict[str, int]
    by_client: dict[str, int]
    oldest_wait_ms: float | None


class CountersView(_Frozen):
    """Counts since the proxy started."""

    received: int
    admitted: int
    completed: int
    failed: int
    failed_by_reason: dict[str, int]
    rejected: int
    rejected_by_reason: dict[str, int]
    cancelled_while_queued: int
    cancelled_while_running: int
    client_stalled: int
    upstream_errors: int


class Percentiles(_Frozen):
    """Nearest-rank percentiles of one latency, in milliseconds; null with no samples."""

    p50: float | None
    p95: float | None
    p99: float | None
    samples: int


class LatencyView(_Frozen):
    """Latency percentiles over a sliding window of recent requests."""

    window_s: float
    queue_wait_ms: Percentiles
    first_byte_ms: Percentiles
    total_ms: Percentiles


class TokensView(_Frozen):
    """Token counts from Ollama's final chunks (or `usage` on /v1) and recent rates."""

    prompt_tokens: int
    eval_tokens: int
    prefill_tokens_per_s: float | None
    decode_tokens_per_s: float | None
    output_tokens_per_s_1m: float
    output_tokens_per_s_5m: float


class UtilizationView(_Frozen):
    """Busy lane-seconds over available lane-seconds (0 to 1)."""

    busy_ratio_1m: float
    busy_ratio_5m: float


class Breakdown(_Frozen):
    """Totals for one client key or one model."""

    requests: int
    prompt_tokens: int
    eval_tokens: int
    mean_wait_ms: float | None


class ClientBreakdown(Breakdown):
    """Totals for one client key, and its fair share (queue rule 4)."""

    served_tokens: float  # w_in x prompt + w_out x output tokens, since start
    served_share_5m: float | None  # of all served tokens in the last 5 minutes
    service_counter: float | None  # the fair-share counter; null once forgotten


class UpstreamView(_Frozen):
    """Every host merged: the first host's URL, any host reachable, all loaded models."""

    url: str
    reachable: bool
    version: str | None
    loaded_models: list[LoadedModel]
    checked_ago_s: float | None


class ModelLanesRow(_Frozen):
    """One model's lanes on one host: what the proxy sends at once, why, what Ollama runs."""

    lanes: int
    source: str
    busy: int
    ollama_lanes: int
    ollama_source: str


class UpstreamsRow(_Frozen):
    """One Ollama host: what its poll saw, its lanes and health, and placement's picture."""

    url: str
    reachable: bool
    version: str | None
    checked_ago_s: float | None
    loaded_models: list[LoadedModel]
    warm_models: list[str]
    lanes: int
    busy: int
    queued: int
    cap: int | None
    num_parallel: int | None
    num_parallel_source: str
    num_parallel_detail: str
    models: dict[str, ModelLanesRow]
    healthy: bool
    requests: int
    swaps: int
    errors: int


class PinView(_Frozen):
    """Options forced on one model's native requests, and how many requests they changed."""

    num_ctx: int | None
    keep_alive: str | None
    pinned: int


class WarningView(_Frozen):
    """One kind of trouble seen since start: how often, the latest example, what to do."""

    kind: str
    count: int
    latest: str
    latest_at_unix_s: float
    hint: str


class VerdictView(_Frozen):
    """What limits throughput now (`proxy.stats.verdict`): a kind, one sentence, the fix, and
    the numbers behind them."""

    kind: str
    explanation: str
    fix: str
    numbers: dict[str, int | float]


class StatsView(_Frozen):
    """Everything `/stats` answers; `/metrics` renders the same object."""

    version: str
    uptime_s: float
    lanes: LanesView
    queue: QueueView
    counters: CountersView
    latency: LatencyView
    tokens: TokensView
    utilization: UtilizationView
    clients: dict[str, ClientBreakdown]
    models: dict[str, Breakdown]
    upstream: UpstreamView
    warnings: list[WarningView]
    upstreams: dict[str, UpstreamsRow]
    pins: dict[str, PinView]
    verdict: VerdictView
    secondary: list[VerdictView]
