"""The machine the code acts on: platform, home, user, /proc, and its external commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config import config_path

__all__ = ["CommandResult", "Machine"]

COMMAND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CommandResult:
    """How an external command ended."""

    rc: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Machine:
    """Everything about the machine that code below the CLI may depend on; tests build one."""

    platform: str  # "darwin", "linux", ...
    home: Path
    uid: int
    is_root: bool
    config_path: Path
    env: Mapping[str, str] = field(default_factory=dict)  # PATH finds external commands
    etc_root: Path = Path("/etc")
    proc_root: Path = Path("/proc")

    @classmethod
    def current(cls) -> Machine:
        """The real machine."""
        uid = os.getuid() if hasattr(os, "getuid") else 0
        env = dict(os.environ)
        return cls(
            platform=sys.platform,
            home=Path.home(),
            uid=uid,
            is_root=uid == 0,
            config_path=config_path(env),
            env=env,
        )

    def which(self, name: str) -> str | None:
        """The absolute path of an external command on this machine's PATH."""
        return shutil.which(name, path=self.env.get("PATH", os.defpath))

    def run(self, argv: Sequence[str], timeout_s: float = COMMAND_TIMEOUT_S) -> CommandResult:
        """Run an external command found on PATH; 127 when it does not exist."""
        exe = self.which(argv[0])
        if exe is None:
            return CommandResult(127, "", f"{argv[0]}: command not found")
        try:
            done = subprocess.run(
                [exe, *argv[1:]],
                env=dict(self.env),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return CommandResult(124, "", f"{argv[0]}: timed out after {timeout_s:g} s")
        except OSError as exc:
            return CommandResult(126, "", f"{argv[0]}: {exc}")
        return CommandResult(done.returncode, done.stdout, done.stderr)
