"""The daemon's open-file limit, raised when it starts."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

CHILD = """
import resource
from proxy.machine.limits import raise_open_file_limit
before, after = raise_open_file_limit()
print(before, after, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


class TestOpenFileLimit:
    @pytest.mark.skipif(sys.platform == "win32", reason="no RLIMIT_NOFILE")
    def test_the_soft_limit_is_raised_to_the_hard_one(self) -> None:
        """Started with a soft limit of 64 (as launchd might), the daemon lifts it."""
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard <= 64:
            pytest.skip(f"the hard limit here is {hard}")

        def low() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))

        done = subprocess.run(
            [sys.executable, "-c", CHILD],
            preexec_fn=low,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        before, after, now = (int(x) for x in done.stdout.split())
        assert before == 64
        assert after == now
        assert now > 64
