"""Merged model views (pure): the union of several hosts' `/api/tags`, `/api/ps`, `/v1/models`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["MERGED_PATHS", "merge"]

# path -> (list key, identity key of an entry)
MERGED_PATHS: dict[str, tuple[str, str]] = {
    "/api/tags": ("models", "name"),
    "/api/ps": ("models", "name"),
    "/v1/models": ("data", "id"),
}


def merge(path: str, docs: Sequence[Any]) -> dict[str, Any]:
    """One answer for `path` from several hosts' answers, first host wins on duplicates.

    `/api/ps` stays sorted by `expires_at`, newest first, as Ollama sorts it.
    """
    list_key, id_key = MERGED_PATHS[path]
    seen: set[str] = set()
    entries: list[dict[str, Any]] = []
    for doc in docs:
        items = doc.get(list_key) if isinstance(doc, dict) else None
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get(id_key), str):
                continue
            if item[id_key] in seen:
                continue
            seen.add(item[id_key])
            entries.append(item)
    if path == "/api/ps":
        entries.sort(key=lambda e: str(e.get("expires_at", "")), reverse=True)
    if path == "/v1/models":
        return {"object": "list", "data": entries}
    return {list_key: entries}
