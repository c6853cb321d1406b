"""A doctor's finding: one check's verdict in plain words, with a fix when something is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Finding", "Severity"]

Severity = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    """One check's verdict in plain words, with a fix when something is wrong."""

    check: str
    severity: Severity
    summary: str
    fix: str | None = None
