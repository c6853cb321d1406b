"""Facts from the machine, read through fake commands and a tmp home: launch mode, files."""

from __future__ import annotations

import argparse
import io
import plistlib
import sys
from pathlib import Path

from proxy.commands.doctor import doctor
from proxy.install.doctor_facts import LaneSettings
from proxy.install.platform_facts import (
    brew_plist_env,
    default_urls,
    detect_launch,
    installed_service,
    lane_settings,
)
from proxy.install.service import Target
from proxy.machine.machine import Machine
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.machine.fakes import Fakes


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


def with_config(machine: Machine, text: str) -> Machine:
    """`machine` with `text` as the proxy's config file."""
    machine.config_path.parent.mkdir(parents=True, exist_ok=True)
    machine.config_path.write_text(text)
    return machine


class TestLaneSettings:
    def test_serve_table(self, fakes: Fakes) -> None:
        """[serve] gives the cap, model_lanes (by Ollama's names) and num_parallel."""
        machine = with_config(
            fakes.machine("linux"),
            '[serve]\nlanes = 3\nnum_parallel = 2\n[serve.model_lanes]\n"all-minilm" = 1\n',
        )
        assert lane_settings(machine, "http://127.0.0.1:11434") == LaneSettings(
            "default", "[serve]", 3, {"all-minilm:latest": 1}, 2
        )

    def test_no_file_is_auto(self, fakes: Fakes) -> None:
        """Without a config file the lanes are "auto", with nothing set by hand."""
        assert lane_settings(fakes.machine("linux"), "http://127.0.0.1:11434") == LaneSettings()

    def test_the_upstreams_entry_with_ollamas_url(self, fakes: Fakes) -> None:
        """With several upstreams, the entry whose URL is Ollama's is the one judged."""
        machine = with_config(
            fakes.machine("linux"),
            '[[serve.upstreams]]\nname = "far"\nurl = "http://10.0.0.9:11434"\nlanes = 2\n'
            '[[serve.upstreams]]\nname = "here"\nurl = "http://127.0.0.1:11434"\n'
            'model_lanes = {"qwen3-vl:8b" = 2}\n',
        )
        assert lane_settings(machine, "http://127.0.0.1:11434/") == LaneSettings(
            "here", 'the [[serve.upstreams]] entry "here"', None, {"qwen3-vl:8b": 2}
        )

    def test_settings_that_do_not_load(self, fakes: Fakes) -> None:
        """An invalid value gives the defaults and the settings error, naming the setting."""
        machine = with_config(fakes.machine("linux"), "[serve]\nlanes = 0\n")
        found = lane_settings(machine, "http://127.0.0.1:11434")
        assert (found.cap, "invalid setting 'lanes'" in (found.error or "")) == (None, True)


class TestDoctorOnMacos:
    async def test_doctor_on_macos_with_the_brew_trap(
        self, fakes: Fakes, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """On a (patched) Mac: env from launchctl, listeners from lsof, and the brew trap."""
        sim = await simulator(lanes=2)
        prx = await proxy(upstream=base_url(sim), lanes="auto")
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
