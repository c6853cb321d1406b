"""Exit statuses of the `miner` command (its own: miner never imports proxy)."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitStatus"]


class ExitStatus(IntEnum):
    """What `miner` returns to the shell."""

    SUCCESS = 0
    PARTIAL = 1  # some segments failed (or a command failed)
    USAGE = 2  # bad arguments or settings
    CTRL_C = 130
