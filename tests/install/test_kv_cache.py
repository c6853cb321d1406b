"""KV-cache bytes per token from a model's /api/show model_info."""

from __future__ import annotations

from proxy.install.kv_cache import kv_bytes_per_token

LLAMA_8B: dict[str, object] = {
    "general.architecture": "llama",
    "llama.block_count": 32,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
    "llama.embedding_length": 4096,
}


class TestKvBytesPerToken:
    def test_grouped_query_attention(self) -> None:
        """32 layers × 8 KV heads × (128 + 128) dims × 2 bytes = 128 KiB per token."""
        assert kv_bytes_per_token(LLAMA_8B, None) == 131072

    def test_quantised_cache(self) -> None:
        """q8_0 stores 34 bytes per 32 elements."""
        assert kv_bytes_per_token(LLAMA_8B, "q8_0") == 131072 * 34 // 64

    def test_per_layer_heads_and_explicit_lengths(self) -> None:
        """A list of KV heads per layer and explicit key/value lengths are honoured."""
        info: dict[str, object] = {
            "general.architecture": "g",
            "g.block_count": 2,
            "g.attention.head_count_kv": [4, 2],
            "g.attention.key_length": 256,
            "g.attention.value_length": 128,
        }
        assert kv_bytes_per_token(info, "f16") == 6 * 384 * 2

    def test_unknown_without_shape(self) -> None:
        """Without the architecture's shape there is no estimate."""
        assert kv_bytes_per_token({"general.architecture": "x", "x.block_count": 4}, None) is None
        assert kv_bytes_per_token({}, None) is None
