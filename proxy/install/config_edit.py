"""The one editor of the proxy's TOML config file, and the one function that writes it.

Edits are text in, text out, keeping comments and every other line as written:
- `install_config` sets values in `[serve]` reversibly (`lanes install`), and
  `restore_config` undoes that (`lanes uninstall`);
- `set_value` sets one value in place (`lanes tune --apply`).
`read_config` reads the file and `write_config` is the only code that writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "MANAGED_MARK",
    "holds_secret",
    "install_config",
    "masked",
    "read_config",
    "restore_config",
    "set_value",
    "write_config",
]

MANAGED_MARK = "# lanes install"
_SAVED = "# lanes install saved: "
SERVE = "serve"

_HEADER = re.compile(r"^\s*\[")  # a table or an array-of-tables header: a table ends here
_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_SECRET = re.compile(r"""(\b(?:auth_token|auth_header)\s*=\s*)("(?:[^"\\]|\\.)*"|'[^']*')""")
_HIDDEN = '"********"'  # what a printed config shows instead of a secret

Value = str | int


def read_config(path: Path) -> str | None:
    """The config file's text; None when there is no such file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def holds_secret(text: str) -> bool:
    """True when the config text sets a token or an upstream's Authorization value."""
    return _SECRET.search(text) is not None


def masked(text: str) -> str:
    """The config text with every secret value hidden, for printing (`--dry-run`)."""
    return _SECRET.sub(lambda m: m[1] + _HIDDEN, text)


def write_config(path: Path, text: str) -> None:
    """Write the config file, creating its folder: the only function that writes it.

    The text goes to a sibling file first, renamed over the old one, so a reader never sees
    half a file. A file that exists keeps its permission bits, except that a file holding a
    secret is always 0600, from its first byte on.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    mode: int | None = None
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
    if holds_secret(text):
        mode = 0o600
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    first = 0o666 if mode is None else 0o600  # a new file: the umask decides, as for any file
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, first)
    with os.fdopen(fd, "wb") as out:
        out.write(text.encode("utf-8"))
    if mode is not None:
        os.chmod(partial, mode)
    os.replace(partial, path)


def _toml_value(value: Value) -> str:
    return str(value) if isinstance(value, int) else json.dumps(value)


def _table_span(lines: list[str], table: str) -> tuple[int, int] | None:
    """(header line, line after the table's last) of the first `[table]`; None if absent."""
    start = next(
        (i for i, line in enumerate(lines) if (m := _TABLE.match(line)) and m[1] == table), None
    )
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _HEADER.match(lines[i])), len(lines))
    return start, end


def _appended(lines: list[str], header: str, body: list[str]) -> list[str]:
    """`lines`, a blank line if the last is not blank, then a new table."""
    gap = [""] if lines and lines[-1].strip() else []
    return [*lines, *gap, header, *body]


def _checked(text: str, values: Mapping[str, Value], table: str = SERVE) -> str:
    """The edited text, if TOML reads back exactly `values` in `[table]`; else ValueError."""
    try:
        found = tomllib.loads(text).get(table)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"the config file would not be valid TOML: {exc}") from None
    if not isinstance(found, dict) or any(found.get(k) != v for k, v in values.items()):
        raise ValueError(f"the config file's [{table}] table could not be edited safely")
    return text


def _assigned(lines: list[str], span: tuple[int, int], key: str, assignment: str) -> list[str]:
    """`lines` with `key`'s line in the table at `span` replaced, or `assignment` added."""
    start, end = span
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=[^#]*(#.*)?$")
    for i in range(start + 1, end):
        if match := pattern.match(lines[i]):
            comment = f"  {match[1]}" if match[1] else ""
            return [*lines[:i], assignment + comment, *lines[i + 1 :]]
    insert = end
    while insert > start + 1 and not lines[insert - 1].strip():
        insert -= 1
    return [*lines[:insert], assignment, *lines[insert:]]


def set_value(text: str, key: str, value: Value, table: str = SERVE) -> str:
    """`text` with `key = value` in `[table]`, everything else as written.

    An existing line is replaced in place, keeping its trailing comment (such as
    `lanes install`'s mark, so `lanes uninstall` still undoes it); a new key goes at the end
    of the table, before its trailing blank lines; a missing table is appended.
    """
    lines = text.splitlines()
    assignment = f"{key} = {_toml_value(value)}"
    span = _table_span(lines, table)
    if span is None:
        lines = _appended(lines, f"[{table}]", [assignment])
    else:
        lines = _assigned(lines, span, key, assignment)
    return _checked("\n".join(lines) + "\n", {key: value}, table)


def _is_managed_serve_header(line: str) -> bool:
    match = _TABLE.match(line)
    return match is not None and match[1] == SERVE and line.rstrip().endswith(MANAGED_MARK)


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
        if _is_managed_serve_header(line):
            rest = kept[i + 1 :]
            region = rest[: next((j for j, x in enumerate(rest) if _HEADER.match(x)), len(rest))]
            if not any(x.strip() and not x.lstrip().startswith("#") for x in region):
                if out and not out[-1].strip():
                    out.pop()
                continue
        out.append(line)
    return "\n".join(out) + "\n" if any(x.strip() for x in out) else ""


def install_config(text: str, values: Mapping[str, Value]) -> str:
    """Set `values` in the `[serve]` table; lines they replace are kept as comments.

    Comments and every other setting survive, so `restore_config` gives back the file as it
    was before the first install, and installing twice gives the same text as once.
    """
    lines = restore_config(text).splitlines()
    managed = [f"{key} = {_toml_value(value)}  {MANAGED_MARK}" for key, value in values.items()]
    span = _table_span(lines, SERVE)
    if span is None:
        lines = _appended(lines, f"[{SERVE}]  {MANAGED_MARK}", managed)
        return _checked("\n".join(lines) + "\n", values)
    start, end = span
    keys = re.compile(r"^\s*(" + "|".join(map(re.escape, values)) + r")\s*=")
    for i in range(start + 1, end):
        if keys.match(lines[i]):
            stripped = lines[i].lstrip()
            lines[i] = lines[i][: len(lines[i]) - len(stripped)] + _SAVED + stripped
    lines[start + 1 : start + 1] = managed
    return _checked("\n".join(lines) + "\n", values)
