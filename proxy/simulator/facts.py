"""What the simulated Ollama reports about a model: `details`, `model_info`, digest (pure)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from proxy.simulator.catalog import ModelSpec

__all__ = ["details", "digest", "model_info", "parameter_count"]

_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def digest(spec: ModelSpec) -> str:
    """The model's sha256 digest (of its name: stable across runs)."""
    return hashlib.sha256(spec.name.encode()).hexdigest()


def parameter_count(spec: ModelSpec) -> int:
    """`general.parameter_count` from the parameter size: "7.6B" -> 7_600_000_000."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMBT]?)\s*", spec.parameter_size.upper())
    if match is None:
        return 0
    return round(float(match[1]) * _SCALE[match[2]])


def details(spec: ModelSpec) -> dict[str, Any]:
    """The `details` object of /api/tags, /api/ps and /api/show."""
    return {
        "parent_model": "",
        "format": "gguf",
        "family": spec.family,
        "families": [spec.family],
        "parameter_size": spec.parameter_size,
        "quantization_level": spec.quantization_level,
    }


def model_info(spec: ModelSpec) -> dict[str, Any]:
    """/api/show `model_info`: the GGUF keys Ollama reports, prefixed by the architecture.

    Embedding models carry `<arch>.pooling_type` (how Ollama tells them apart); models
    without grouped-query attention report no `head_count_kv`, and only some report
    `key_length`/`value_length` (then the head size is embedding_length / head_count).
    """
    arch = spec.architecture
    info: dict[str, Any] = {
        "general.architecture": arch,
        "general.parameter_count": parameter_count(spec),
        "general.quantization_version": 2,
        f"{arch}.context_length": spec.context_length,
        f"{arch}.embedding_length": spec.embedding_length,
        f"{arch}.block_count": spec.block_count,
        f"{arch}.attention.head_count": spec.head_count,
    }
    if spec.head_count_kv is not None:
        info[f"{arch}.attention.head_count_kv"] = spec.head_count_kv
    if spec.key_length is not None:
        info[f"{arch}.attention.key_length"] = spec.key_length
        info[f"{arch}.attention.value_length"] = spec.key_length
    if spec.embedding_only:
        info[f"{arch}.pooling_type"] = 1
    return dict(sorted(info.items()))
