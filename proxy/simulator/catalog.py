"""The simulated models: ModelSpec, the `--model NAME[:k=v,...]` keys, and the default models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_MODELS",
    "FaultSettings",
    "ModelSpec",
    "canonical_name",
    "parse_model_spec",
    "with_defaults",
]

_GIB = 1024**3


def canonical_name(name: str) -> str:
    """`llama3.2` -> `llama3.2:latest`; names that carry a tag are kept as they are."""
    name = name.strip()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


class FaultSettings(BaseModel):
    """Fault injection knobs; on a ModelSpec, None means "use the run-wide value"."""

    model_config = ConfigDict(extra="forbid")

    fault_error_rate: float | None = Field(None, ge=0, le=1)
    fault_error_after_chunks: int | None = Field(None, ge=0)
    fault_busy_rate: float | None = Field(None, ge=0, le=1)
    fault_hang_s: float | None = Field(None, ge=0)
    fault_hang_rate: float | None = Field(None, ge=0, le=1)
    fault_drop_after_chunks: int | None = Field(None, ge=0)
    fault_drop_rate: float | None = Field(None, ge=0, le=1)
    fault_malformed_rate: float | None = Field(None, ge=0, le=1)
    fault_slow_first_token_s: float | None = Field(None, ge=0)


class ModelSpec(FaultSettings):
    """One model the simulator serves: its name, size, kind and the shape /api/show reports."""

    name: str
    size: int = Field(4 * _GIB, ge=0, description="bytes on disk and in VRAM")
    context_length: int = Field(32768, ge=4, description="training context")
    embedding_only: bool = False
    vision: bool = Field(False, description="takes images (capability `vision`)")
    lanes: int | None = Field(None, ge=1, description="slots, overriding every lane rule")
    family: str = "llama"
    architecture: str = Field("", description="general.architecture; empty: the family")
    parameter_size: str = "7.6B"
    quantization_level: str = "Q4_K_M"
    embedding_length: int = Field(3584, ge=1)
    block_count: int = Field(28, ge=1, description="layers")
    head_count: int = Field(28, ge=1, description="attention heads")
    head_count_kv: int | None = Field(4, ge=1, description="KV heads; None: not reported")
    key_length: int | None = Field(None, ge=1, description="head size; None: not reported")

    @field_validator("name")
    @classmethod
    def _canonical(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model name must not be empty")
        return canonical_name(value)

    @model_validator(mode="after")
    def _architecture_defaults_to_family(self) -> ModelSpec:
        if not self.architecture:
            self.architecture = self.family
        return self

    @property
    def capabilities(self) -> list[str]:
        """What Ollama's `capabilities` says, in its order (server/images.go)."""
        if self.embedding_only:
            return ["embedding"]
        return ["completion", *(["vision"] if self.vision else []), "tools"]


# Keys accepted after the name in `--model NAME[:key=value,...]`.
_SPEC_KEYS = {
    "ctx": "context_length",
    "context_length": "context_length",
    "size": "size",
    "lanes": "lanes",
    "embed": "embedding_only",
    "vision": "vision",
    "dim": "embedding_length",
    "family": "family",
    "arch": "architecture",
    "error_rate": "fault_error_rate",
    "error_after": "fault_error_after_chunks",
    "busy_rate": "fault_busy_rate",
    "hang_s": "fault_hang_s",
    "hang_rate": "fault_hang_rate",
    "drop_after": "fault_drop_after_chunks",
    "drop_rate": "fault_drop_rate",
    "malformed_rate": "fault_malformed_rate",
    "slow_first_token_s": "fault_slow_first_token_s",
}
_FLAGS = {"embedding_only", "vision"}  # keys that mean true without `=value`


def _is_option_list(text: str) -> bool:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    return bool(parts) and all(p.split("=", 1)[0] in _SPEC_KEYS for p in parts)


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmg]?)(i?)b?\s*", text.lower())
    if not match:
        raise ValueError(f"bad size {text!r}; use e.g. 4.7g or 512mib")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " kmg".index(unit or " "))


def parse_model_spec(text: str) -> dict[str, Any]:
    """Parse `NAME[:ctx=8192,size=4.7g,lanes=2,embed,arch=qwen3vl,...]` into ModelSpec fields."""
    name, options = text, ""
    head, sep, tail = text.rpartition(":")
    if sep and _is_option_list(tail):
        name, options = head, tail
    fields: dict[str, Any] = {"name": name}
    for part in (p.strip() for p in options.split(",")):
        if not part:
            continue
        key, eq, value = part.partition("=")
        field = _SPEC_KEYS[key]
        if field in _FLAGS:
            fields[field] = value.lower() not in {"0", "false", "no"} if eq else True
        elif field == "size":
            fields[field] = _parse_size(value)
        else:
            fields[field] = value
    return fields


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="qwen2.5:7b-instruct",
        size=4_683_087_332,
        context_length=32768,
        family="qwen2",
        parameter_size="7.6B",
        embedding_length=3584,
        block_count=28,
        head_count=28,
        head_count_kv=4,
    ),
    ModelSpec(
        name="llama3.2:latest",
        size=2_019_393_189,
        context_length=131072,
        family="llama",
        parameter_size="3.2B",
        embedding_length=3072,
        block_count=28,
        head_count=24,
        head_count_kv=8,
        key_length=128,
    ),
    ModelSpec(
        name="all-minilm:latest",
        size=45_960_996,
        context_length=512,
        embedding_only=True,
        family="bert",
        parameter_size="23M",
        quantization_level="F16",
        embedding_length=384,
        block_count=6,
        head_count=12,
        head_count_kv=None,
    ),
    ModelSpec(
        name="qwen3-vl:8b",
        size=6_141_799_312,
        context_length=262144,
        vision=True,
        family="qwen3vl",
        parameter_size="8.8B",
        embedding_length=4096,
        block_count=36,
        head_count=32,
        head_count_kv=8,
        key_length=128,
    ),
)


def with_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    """A spec naming a default model keeps that model's details unless it overrides them
    (a new `family` without `arch` also sets the architecture)."""
    name = canonical_name(str(fields.get("name", "")))
    base = next((m for m in DEFAULT_MODELS if m.name == name), None)
    if base is None:
        return fields
    inherited = base.model_dump()  # None too: `head_count_kv` None means "not reported"
    if "family" in fields and "architecture" not in fields:
        inherited.pop("architecture")
    return inherited | fields
