"""Finding the installed `lanes` script, the program the installed services start."""

from __future__ import annotations

from pathlib import Path

from proxy.install.lanes_exe import find_lanes_exe
from tests.machine.fakes import Fakes


class TestFindLanesExe:
    def test_find_lanes_exe_prefers_the_running_script(self, fakes: Fakes, tmp_path: Path) -> None:
        """The `lanes` being run wins; without one, an executable `lanes` is still found."""
        script = tmp_path / "venv" / "lanes"
        script.parent.mkdir()
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
        machine = fakes.machine("linux")
        assert find_lanes_exe(machine, argv0=str(script)) == script
        found = find_lanes_exe(machine, argv0="/usr/lib/python3/pytest")
        assert found is not None
        assert found.is_absolute()
        assert found.name == "lanes"
