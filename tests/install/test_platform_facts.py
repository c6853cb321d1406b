"""Facts from the machine, read through fake commands and a tmp home: launch mode, env, files."""

from __future__ import annotations

import argparse
import io
import plistlib
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from proxy.commands.doctor import doctor
from proxy.install.machine import Machine, find_lanes_exe
from proxy.install.platform_facts import (
    brew_plist_env,
    default_urls,
    detect_launch,
    installed_service,
    ollama_environment,
)
from proxy.install.service import Target
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.install.conftest import Fakes


def agents(machine: Machine) -> Path:
    folder = machine.home / "Library" / "LaunchAgents"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def target(machine: Machine) -> Target:
    return Target(
        machine.platform, machine.home, machine.uid, Path("/x/lanes"), machine.config_path
    )


class TestDetectLaunch:
    def test_hand_made_agent(self, fakes: Fakes) -> None:
        """A LaunchAgent running `ollama serve` is found by its label."""
        fakes.answer("pgrep", rc=1)
        fakes.answer("brew", rc=1)
        machine = fakes.machine("darwin")
        agent = {"Label": "local.ollama", "ProgramArguments": ["/opt/bin/ollama", "serve"]}
        (agents(machine) / "local.ollama.plist").write_bytes(plistlib.dumps(agent))
        (agents(machine) / "other.plist").write_bytes(plistlib.dumps({"Label": "other"}))
        assert detect_launch(machine) == ("agent", "local.ollama")

    def test_nothing_running(self, fakes: Fakes) -> None:
        """No app, no brew service, no agent: "none"."""
        fakes.answer("pgrep", rc=1)
        assert detect_launch(fakes.machine("darwin")) == ("none", None)

    def test_linux_without_ollama_unit(self, fakes: Fakes) -> None:
        """systemd reporting the unit not found means Ollama is started some other way."""
        fakes.answer("systemctl", stdout="LoadState=not-found\n")
        assert detect_launch(fakes.machine("linux")) == ("none", None)


class TestEnvironment:
    def test_systemctl_show_when_no_process_is_readable(self, fakes: Fakes) -> None:
        """Without a readable process the unit's configured Environment= is parsed."""
        fakes.answer(
            "systemctl",
            "show",
            stdout='LoadState=loaded\nEnvironment=PATH=/bin OLLAMA_NUM_PARALLEL=3 "OLLAMA_X=a b"\n',
        )
        env, source = ollama_environment(fakes.machine("linux"), [])
        assert env == {"OLLAMA_NUM_PARALLEL": "3", "OLLAMA_X": "a b"}
        assert source == "systemctl show ollama.service"

    def test_nothing_readable(self, fakes: Fakes) -> None:
        """No process and no unit: unknown, with the reason."""
        env, source = ollama_environment(fakes.machine("linux"), [])
        assert env is None
        assert "no ollama.service" in source

    def test_proc_environ_of_a_child(self, fakes: Fakes) -> None:
        """A process's OLLAMA_* variables are read from /proc/<pid>/environ."""
        if not Path("/proc/self/environ").exists():
            pytest.skip("needs Linux /proc")
        # Until the exec is done, /proc/<pid>/environ holds the forked parent's environment
        # (or nothing): read it only once the child says it runs.
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"],
            env={"OLLAMA_NUM_PARALLEL": "5", "OTHER": "x"},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            machine = replace(fakes.machine("linux"), proc_root=Path("/proc"))
            env, source = ollama_environment(machine, [child.pid])
        finally:
            child.kill()
            child.wait()
            if child.stdout is not None:
                child.stdout.close()
        assert env == {"OLLAMA_NUM_PARALLEL": "5"}
        assert source.startswith(f"/proc/{child.pid}/environ")

    def test_launchctl_getenv_on_macos(self, fakes: Fakes) -> None:
        """On macOS the values come from launchd's user environment."""
        fakes.answer("launchctl", "getenv", "OLLAMA_NUM_PARALLEL", stdout="4\n")
        env, source = ollama_environment(fakes.machine("darwin"), [])
        assert env == {"OLLAMA_NUM_PARALLEL": "4"}
        assert source.startswith("launchctl getenv")


class TestFiles:
    def test_brew_plist_env(self, fakes: Fakes) -> None:
        """OLLAMA_* entries in brew's plist are what the trap would drop."""
        machine = fakes.machine("darwin")
        assert brew_plist_env(machine) is None
        plist = {
            "Label": "homebrew.mxcl.ollama",
            "EnvironmentVariables": {"OLLAMA_NUM_PARALLEL": "4", "PATH": "/usr/bin"},
        }
        (agents(machine) / "homebrew.mxcl.ollama.plist").write_bytes(plistlib.dumps(plist))
        assert brew_plist_env(machine) == {"OLLAMA_NUM_PARALLEL": "4"}

    def test_installed_agent(self, fakes: Fakes) -> None:
        """The installed proxy agent's program and restart command are read back."""
        machine = fakes.machine("darwin")
        agent = {"Label": "com.ollama-lanes.proxy", "ProgramArguments": [sys.executable, "serve"]}
        (agents(machine) / "com.ollama-lanes.proxy.plist").write_bytes(plistlib.dumps(agent))
        service = installed_service(machine, target(machine))
        assert service is not None
        assert (service.exe, service.exe_exists) == (sys.executable, True)
        assert service.restart == "launchctl kickstart -k gui/501/com.ollama-lanes.proxy"

    def test_installed_unit(self, fakes: Fakes) -> None:
        """The installed unit's program is read back, quoted or not."""
        machine = fakes.machine("linux")
        where = target(machine).unit_path
        where.parent.mkdir(parents=True)
        where.write_text('[Service]\nExecStart="/no such/lanes" serve\n')
        service = installed_service(machine, target(machine))
        assert service is not None
        assert (service.exe, service.exe_exists) == ("/no such/lanes", False)


class TestDefaultUrls:
    def test_default_urls_follow_the_config(self, fakes: Fakes) -> None:
        """After a takeover install the doctor looks for the proxy on 11434, Ollama on 11436."""
        machine = fakes.machine("linux")
        assert default_urls(machine) == ("http://127.0.0.1:11435", "http://127.0.0.1:11434")
        machine.config_path.parent.mkdir(parents=True)
        machine.config_path.write_text(
            '[serve]\nlisten = "0.0.0.0:11434"\nupstream = "http://127.0.0.1:11436/"\n'
        )
        assert default_urls(machine) == ("http://127.0.0.1:11434", "http://127.0.0.1:11436")


class TestDoctorOnMacos:
    async def test_doctor_on_macos_with_the_brew_trap(
        self, fakes: Fakes, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """On a (patched) Mac: env from launchctl, listeners from lsof, and the brew trap."""
        sim = await simulator(lanes=2)
        prx = await proxy(upstream=base_url(sim), lanes=2)
        port = sim.port
        fakes.answer("launchctl", "getenv", "OLLAMA_NUM_PARALLEL", stdout="2\n")
        fakes.answer("lsof", stdout=f"p812\ncollama\nf5\nn127.0.0.1:{port}\n")
        machine = fakes.machine("darwin")
        plist = {"Label": "homebrew.mxcl.ollama", "EnvironmentVariables": {"OLLAMA_HOST": "x"}}
        (agents(machine) / "homebrew.mxcl.ollama.plist").write_bytes(plistlib.dumps(plist))
        out = io.StringIO()
        args = argparse.Namespace(json=False, url=base_url(prx), ollama=base_url(sim))
        assert await doctor(args, machine, out) == 1
        text = out.getvalue()
        assert "OLLAMA_NUM_PARALLEL from launchctl getenv" in text
        assert f"No port is claimed twice (checked {port})" in text
        assert "[FAIL] The brew services plist sets OLLAMA_HOST" in text
        assert text.endswith("1 problem(s) need fixing.\n")
        assert ["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fpcn"] in fakes.calls()


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
