"""Settings of `lanes simulate`: env prefix LANES_SIM_, config table [simulate], flags override."""

from __future__ import annotations

import json
import os
import re
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from proxy.config import FileSettings
from proxy.lanes.lanemap import ONE_LANE_ARCHITECTURES
from proxy.settings import ListenAddress
from proxy.simulator.catalog import (
    DEFAULT_MODELS,
    ModelSpec,
    canonical_name,
    parse_model_spec,
    with_defaults,
)

__all__ = ["SimulatorSettings", "go_duration_s"]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration_s(text: str) -> float:
    """Seconds in a Go duration such as `10m` or `1h30m`; raises ValueError like Go words it."""
    text = text.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _DURATION.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        if body and body.replace(".", "", 1).isdigit():
            raise ValueError(f'time: missing unit in duration "{text}"')
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * sum(float(n) * _UNIT_S[u] for n, u in parts)


def _env_keep_alive(default: float) -> float:
    """OLLAMA_KEEP_ALIVE: a Go duration or an integer number of seconds."""
    raw = os.environ.get("OLLAMA_KEEP_ALIVE", "").strip().strip("\"'")
    if not raw:
        return default
    try:
        return float(int(raw))
    except ValueError:
        pass
    try:
        return go_duration_s(raw)
    except ValueError:
        return default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


class SimulatorSettings(FileSettings):
    """Everything `lanes simulate` can be told; fault fields are run-wide defaults."""

    model_config = SettingsConfigDict(
        env_prefix="LANES_SIM_", extra="forbid", validate_default=True
    )
    config_section: ClassVar[str] = "simulate"

    listen: ListenAddress = Field(
        "127.0.0.1:11434", description="address the simulator binds, HOST:PORT"
    )
    lanes: int = Field(
        default_factory=lambda: max(1, _env_int("OLLAMA_NUM_PARALLEL", 1)),
        ge=1,
        le=256,
        description="parallel slots per loaded model (OLLAMA_NUM_PARALLEL); 1 for embedding "
        "models and the one-lane architectures",
    )
    load_seconds: float = Field(2.0, ge=0, description="time to load a model")
    prefill_tps: float = Field(2000.0, gt=0, description="prompt tokens per second")
    decode_tps: float = Field(40.0, gt=0, description="generated tokens per second, one request")
    batch_alpha: float = Field(0.7, ge=0, le=1, description="k decoding -> decode_tps * k**alpha")
    max_queue: int = Field(
        default_factory=lambda: max(0, _env_int("OLLAMA_MAX_QUEUE", 512)),
        ge=0,
        description="scheduler-queue bound (OLLAMA_MAX_QUEUE)",
    )
    max_loaded_models: int = Field(
        default_factory=lambda: _env_int("OLLAMA_MAX_LOADED_MODELS", 0) or 3,
        ge=1,
        description="models loaded at once (OLLAMA_MAX_LOADED_MODELS, 0 = 3)",
    )
    keep_alive_s: float = Field(
        default_factory=lambda: _env_keep_alive(300.0),
        description="idle seconds before unload; negative = never (OLLAMA_KEEP_ALIVE)",
    )
    seed: int = Field(0, description="seed for generated text, lengths and fault dice")
    default_num_ctx: int = Field(
        default_factory=lambda: _env_int("OLLAMA_CONTEXT_LENGTH", 0) or 4096,
        ge=4,
        description="context when a request sets none (OLLAMA_CONTEXT_LENGTH)",
    )
    version: str = Field("0.33.0-sim", description="reported by /api/version")
    models: Annotated[list[ModelSpec], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_MODELS)
    )

    fault_error_rate: float = Field(0.0, ge=0, le=1, description="share of requests that fail")
    fault_error_after_chunks: int = Field(
        0, ge=0, description="0: fail with 500; N: streams fail after N chunks"
    )
    fault_busy_rate: float = Field(0.0, ge=0, le=1, description="share answered 503 busy")
    fault_hang_s: float = Field(0.0, ge=0, description="hang this long before the first byte")
    fault_hang_rate: float = Field(1.0, ge=0, le=1, description="share of requests that hang")
    fault_drop_after_chunks: int | None = Field(
        None, ge=0, description="close the connection after N chunks"
    )
    fault_drop_rate: float = Field(1.0, ge=0, le=1, description="share of requests dropped")
    fault_malformed_rate: float = Field(0.0, ge=0, le=1, description="share with malformed output")
    fault_slow_first_token_s: float = Field(0.0, ge=0, description="extra delay before token 1")

    @field_validator("models", mode="before")
    @classmethod
    def _parse_specs(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: JSON, or specs split by ";"
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(";")
            value = [v for v in value if not isinstance(v, str) or v.strip()]
        if isinstance(value, list):
            return [with_defaults(parse_model_spec(v)) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_models(self) -> SimulatorSettings:
        names = [m.name for m in self.models]
        if not names:
            raise ValueError("at least one model is needed")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model listed twice: {', '.join(dupes)}")
        return self

    def model(self, name: str) -> ModelSpec | None:
        """The spec serving `name` (tag optional), or None."""
        wanted = canonical_name(name)
        return next((m for m in self.models if m.name == wanted), None)

    def slots_for(self, spec: ModelSpec) -> int:
        """Parallel slots of a model, as Ollama decides them (sched.go, see proxy.lanes.lanemap):
        1 for embedding models and the one-lane architectures, else `lanes` (NUM_PARALLEL).
        A spec's own `lanes` overrides every rule."""
        if spec.lanes is not None:
            return spec.lanes
        if "embedding" in spec.capabilities:
            return 1
        if spec.architecture.lower() in ONE_LANE_ARCHITECTURES:
            return 1
        return self.lanes

    def fault(self, spec: ModelSpec, field: str) -> Any:
        """A fault value for one model: its own when set, else the run-wide one."""
        own = getattr(spec, field)
        return getattr(self, field) if own is None else own
