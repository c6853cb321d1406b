"""Option pinning (pure): force `options.num_ctx` and `keep_alive` per model on native requests."""

from __future__ import annotations

import json
from typing import Any

from proxy.upstream_specs import PinSpec

__all__ = ["PINNABLE_PATHS", "encode_document", "pin_document"]

# The native routes; `/v1` bodies have no options (Ollama uses the automatic context there).
PINNABLE_PATHS = frozenset({"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"})


def pin_document(path: str, doc: dict[str, Any], pin: PinSpec) -> bool:
    """Set the pinned values in the body `doc`; True when something had to change."""
    if path not in PINNABLE_PATHS:
        return False
    changed = False
    if pin.num_ctx is not None:
        options = doc.get("options")
        if not isinstance(options, dict):
            options = doc["options"] = {}
        if options.get("num_ctx") != pin.num_ctx:
            options["num_ctx"] = pin.num_ctx
            changed = True
    if pin.keep_alive is not None and doc.get("keep_alive") != pin.keep_alive:
        doc["keep_alive"] = pin.keep_alive
        changed = True
    return changed


def encode_document(doc: dict[str, Any]) -> bytes:
    """A body document as compact JSON (Go's spacing), for a body a pin changed."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
