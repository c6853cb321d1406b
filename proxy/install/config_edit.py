"""Edits of the proxy's TOML config file that `lanes install` makes and `lanes uninstall` undoes."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping

__all__ = ["MANAGED_MARK", "install_config", "restore_config"]

MANAGED_MARK = "# lanes install"
_SAVED = "# lanes install saved: "

_HEADER = re.compile(r"^\s*\[")
_SERVE = re.compile(r"^\s*\[\s*serve\s*\]\s*(#.*)?$")


def _toml_value(value: str | int) -> str:
    return str(value) if isinstance(value, int) else json.dumps(value)


def restore_config(text: str) -> str:
    """Undo `install_config`: drop managed lines, restore the lines it set aside."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(_SAVED):
            kept.append(line[: len(line) - len(stripped)] + stripped[len(_SAVED) :])
        elif not (line.rstrip().endswith(MANAGED_MARK) and not _HEADER.match(line)):
            kept.append(line)
    out: list[str] = []
    for i, line in enumerate(kept):
        if _SERVE.match(line) and line.rstrip().endswith(MANAGED_MARK):
            rest = kept[i + 1 :]
            region = rest[: next((j for j, x in enumerate(rest) if _HEADER.match(x)), len(rest))]
            if not any(x.strip() and not x.lstrip().startswith("#") for x in region):
                if out and not out[-1].strip():
                    out.pop()
                continue
        out.append(line)
    return "\n".join(out) + "\n" if any(x.strip() for x in out) else ""


def install_config(text: str, values: Mapping[str, str | int]) -> str:
    """Set `values` in the `[serve]` table; lines they replace are kept as comments.

    Comments and every other setting survive, so `restore_config` gives back the file as it
    was before the first install, and installing twice gives the same text as once.
    """
    lines = restore_config(text).splitlines()
    managed = [f"{key} = {_toml_value(value)}  {MANAGED_MARK}" for key, value in values.items()]
    start = next((i for i, line in enumerate(lines) if _SERVE.match(line)), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("")
        lines += [f"[serve]  {MANAGED_MARK}", *managed]
        return _checked("\n".join(lines) + "\n", values)
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    keys = re.compile(r"^\s*(" + "|".join(map(re.escape, values)) + r")\s*=")
    for i in range(start + 1, end):
        if keys.match(lines[i]):
            stripped = lines[i].lstrip()
            lines[i] = lines[i][: len(lines[i]) - len(stripped)] + _SAVED + stripped
    lines[start + 1 : start + 1] = managed
    return _checked("\n".join(lines) + "\n", values)


def _checked(text: str, values: Mapping[str, str | int]) -> str:
    """The edited text, if TOML reads back exactly `values` in [serve]; else ValueError."""
    try:
        table = tomllib.loads(text).get("serve")
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the config file would not be valid TOML: {exc}") from None
    if not isinstance(table, dict) or any(table.get(k) != v for k, v in values.items()):
        raise ValueError("the config file's [serve] table could not be edited safely")
    return text
