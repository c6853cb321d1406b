"""The code's shape: every module says what it is in one line and stays small."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(
    path
    for package in ("proxy", "miner", "bench")
    for path in (ROOT / package).rglob("*.py")
    if not any(part.startswith(".") for part in path.relative_to(ROOT).parts)  # venvs
)
MAX_LINES = 350  # "under about 300": a module that grows past this gets split


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_has_a_one_line_summary(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{_name(path)} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.strip(), f"{_name(path)}: the docstring starts with an empty line"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_stays_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines; split it"


def test_the_check_sees_the_tree() -> None:
    """Guards the globs above: the three packages are found, with their subpackages."""
    names = {_name(p) for p in MODULES}
    assert {"proxy/lanes/queue.py", "proxy/relay/app.py", "miner/store.py"} <= names
    assert len(MODULES) > 100
