"""Ollama memory facts: KV-cache bytes per token, from a model's /api/show model_info."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["kv_bytes_per_token"]

# Bytes per cached element for OLLAMA_KV_CACHE_TYPE; q8_0 and q4_0 carry a scale per 32.
_KV_ELEMENT_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}


def kv_bytes_per_token(info: Mapping[str, object], cache_type: str | None) -> int | None:
    """KV-cache bytes one token takes across all layers, from /api/show model_info."""
    arch = info.get("general.architecture")
    if not isinstance(arch, str):
        return None

    def num(key: str) -> int | None:
        value = info.get(f"{arch}.{key}")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    layers, heads = num("block_count"), num("attention.head_count")
    kv_heads: object = info.get(f"{arch}.attention.head_count_kv", heads)
    embed = num("embedding_length")
    key_len = num("attention.key_length") or (embed // heads if embed and heads else None)
    value_len = num("attention.value_length") or key_len
    if not layers or not key_len or not value_len:
        return None
    if isinstance(kv_heads, list):
        total_heads = sum(h for h in kv_heads if isinstance(h, int))
    elif isinstance(kv_heads, int):
        total_heads = kv_heads * layers
    else:
        return None
    element = _KV_ELEMENT_BYTES.get(cache_type or "f16", 2.0)
    return round(total_heads * (key_len + value_len) * element)
