"""Option pinning (pure): force `options.num_ctx` and `keep_alive` per model on native requests."""

from __future__ import annotations

import json
from typing import Any

from proxy.upstream_specs import PinSpec

__all__ = ["PINNABLE_PATHS", "pin_body"]

# The native routes; `/v1` bodies have no options (Ollama uses the automatic context there).
PINNABLE_PATHS = frozenset({"/api/generate", "/api/chat", "/api/embed", "/api/embeddings"})


def pin_body(path: str, doc: dict[str, Any], pin: PinSpec) -> bytes | None:
    """The body with the pinned values set (in `doc` too), or None when nothing had to change."""
    if path not in PINNABLE_PATHS:
        return None
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
    if not changed:
        return None
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
