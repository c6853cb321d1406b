"""Exit statuses of the `lanes` command."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitStatus"]


class ExitStatus(IntEnum):
    """What `lanes` returns to the shell."""

    SUCCESS = 0
    ERROR = 1
    CONFIG_ERROR = 2
    UNAVAILABLE = 3
    CTRL_C = 130
