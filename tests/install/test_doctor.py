"""`diagnose` over hand-made facts: each problem is named, explained and given a fix."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from proxy.install.doctor import Finding, diagnose
from proxy.install.doctor_facts import (
    DoctorFacts,
    InstalledService,
    OllamaProbe,
    ProxyHost,
    ProxyProbe,
)
from proxy.lanes.lanemap import Parallel
from proxy.machine.listeners import Listener
from proxy.machine.speedups import Speedup, speedups
from proxy.ollama import LoadedModel, ModelFacts

OLLAMA = "http://127.0.0.1:11434"
WHERE = "/proc/42/environ of ollama (pid 42)"


def proxy_with(cap: int | None) -> ProxyProbe:
    """A proxy answering /stats with one upstream, Ollama's, and that hand-set cap (None: auto)."""
    host = ProxyHost("default", OLLAMA, cap, 2, "ollama-env", WHERE)
    return ProxyProbe("http://127.0.0.1:11435", lanes=cap or 2, version="0.1.0", hosts=(host,))


GREEN = DoctorFacts(
    platform="linux",
    lanes_version="0.1.0",
    ollama=OllamaProbe(OLLAMA, version="0.12.3"),
    proxy=proxy_with(None),
    ollama_env={"OLLAMA_NUM_PARALLEL": "2"},
    parallel=Parallel(2, "ollama-env", WHERE),
    listeners=(Listener("127.0.0.1:11434", "pid 42 (ollama)"),),
)


def loaded(name: str, context_length: int, size_bytes: int) -> LoadedModel:
    """A model as /api/ps lists it."""
    return LoadedModel(
        name=name,
        context_length=context_length,
        size_vram_bytes=size_bytes,
        expires_at=None,
        size_bytes=size_bytes,
    )


def by_check(findings: list[Finding]) -> dict[str, Finding]:
    """The findings by check name."""
    return {f.check: f for f in findings}


def failed(facts: DoctorFacts) -> dict[str, Finding]:
    """The failed findings by check name."""
    return {f.check: f for f in diagnose(facts) if f.severity == "fail"}


class TestDiagnose:
    def test_green(self) -> None:
        """Auto lanes, one listener, the right proxy version: every check is ok."""
        findings = diagnose(GREEN)
        assert [f.check for f in findings] == [
            "ollama",
            "num_parallel",
            "port",
            "proxy",
            "kv_memory",
        ]
        assert {f.severity for f in findings} == {"ok"}

    def test_auto_lanes_follow_num_parallel(self) -> None:
        """In auto mode nothing can mismatch: the proxy follows NUM_PARALLEL, from its source."""
        finding = by_check(diagnose(GREEN))["num_parallel"]
        assert finding.summary == (
            "Ollama serves 2 request(s) at once per model (OLLAMA_NUM_PARALLEL from "
            f"{WHERE}); the proxy follows NUM_PARALLEL = 2 from ollama-env."
        )

    def test_matching_hand_set_lanes(self) -> None:
        """A hand-set cap equal to NUM_PARALLEL is ok, as before the lane map."""
        finding = by_check(diagnose(replace(GREEN, proxy=proxy_with(2))))["num_parallel"]
        assert (finding.severity, finding.summary.endswith("the proxy agrees.")) == ("ok", True)

    def test_mismatched_lanes(self) -> None:
        """NUM_PARALLEL 1 under a 4-lane proxy is a failure with the install command as fix."""
        unset = Parallel(1, "ollama-env", f"unset: Ollama 0.12.3's default, in {WHERE}")
        facts = replace(GREEN, proxy=proxy_with(4), parallel=unset)
        found = failed(facts)
        assert list(found) == ["num_parallel"]
        assert (
            "(OLLAMA_NUM_PARALLEL unset: Ollama 0.12.3's default" in found["num_parallel"].summary
        )
        assert "up to 4 at once" in found["num_parallel"].summary
        assert "lanes install --lanes 4" in (found["num_parallel"].fix or "")

    def test_unreadable_num_parallel_is_a_warning(self) -> None:
        """When NUM_PARALLEL cannot be read the doctor says why, that 1 is assumed, and the fix."""
        facts = replace(GREEN, parallel=Parallel.unknown("no ollama.service"), ollama_env=None)
        finding = by_check(diagnose(facts))["num_parallel"]
        assert finding.severity == "warn"
        assert "unknown: no ollama.service. The proxy assumes 1" in finding.summary
        assert "Set num_parallel = N (Ollama's value) in [serve]" in (finding.fix or "")
        assert "sudo lanes doctor" in (finding.fix or "")

    def test_ollama_down(self) -> None:
        """No answer from Ollama fails with a start command for the platform."""
        down = replace(GREEN, ollama=OllamaProbe(GREEN.ollama.url, error="connection refused"))
        found = failed(down)
        assert "ollama" in found
        assert "connection refused" in found["ollama"].summary
        assert "systemctl start ollama" in (found["ollama"].fix or "")
        mac = failed(replace(down, platform="darwin"))
        assert "open -a Ollama" in (mac["ollama"].fix or "")

    def test_ollama_url_is_the_proxy(self) -> None:
        """An Ollama address that answers /stats is the proxy: a loop, reported as such."""
        facts = replace(GREEN, ollama=OllamaProbe(GREEN.ollama.url, is_proxy=True))
        assert "answers like the lanes proxy" in failed(facts)["ollama"].summary

    def test_two_owners_on_the_port(self) -> None:
        """Two processes listening on Ollama's port are a conflict naming both."""
        listeners = (
            Listener("0.0.0.0:11434", "pid 42 (ollama)"),
            Listener("127.0.0.1:11434", "pid 77 (python3)"),
        )
        found = failed(replace(GREEN, listeners=listeners))
        assert "2 servers listen on port 11434" in found["port"].summary
        assert "pid 77 (python3)" in found["port"].summary

    def test_one_owner_with_two_sockets_is_fine(self) -> None:
        """One process on IPv4 and IPv6 (a "localhost" bind) is not a conflict."""
        listeners = (
            Listener("127.0.0.1:11434", "pid 42 (ollama)"),
            Listener("[::1]:11434", "pid 42 (ollama)"),
        )
        assert by_check(diagnose(replace(GREEN, listeners=listeners)))["port"].severity == "ok"

    def test_takeover_with_expose_on(self) -> None:
        """Ollama.app exposed on 0.0.0.0:11434 next to a takeover proxy on 127.0.0.1:11434."""
        facts = replace(
            GREEN,
            platform="darwin",
            ollama=OllamaProbe("http://127.0.0.1:11436", error="connection refused"),
            proxy=replace(GREEN.proxy, url="http://127.0.0.1:11434"),
            listeners=(
                Listener("*:11434", "pid 500 (ollama)"),
                Listener("127.0.0.1:11434", "pid 600 (lanes)"),
            ),
        )
        found = failed(facts)
        assert "2 servers listen on port 11434" in found["port"].summary
        assert "Expose Ollama to the network" in (found["ollama"].fix or "")

    def test_nothing_listening_says_nothing_about_ports(self) -> None:
        """With Ollama down there is no port verdict to give; the Ollama check covers it."""
        down = replace(GREEN, ollama=OllamaProbe(GREEN.ollama.url, error="refused"), listeners=())
        assert "port" not in by_check(diagnose(down))

    def test_proxy_and_ollama_same_address(self) -> None:
        """Proxy and Ollama configured on one address is a port conflict."""
        facts = replace(GREEN, proxy=replace(GREEN.proxy, url="http://127.0.0.1:11434"))
        assert "both expected at 127.0.0.1:11434" in failed(facts)["port"].summary

    def test_brew_plist_trap(self) -> None:
        """Settings in brew's regenerated plist are reported as about to be lost."""
        facts = replace(
            GREEN, platform="darwin", brew_plist_env={"OLLAMA_NUM_PARALLEL": "2"}, listeners=None
        )
        found = failed(facts)
        assert "brew" in found
        assert "silently drop" in found["brew"].summary
        clean = by_check(diagnose(replace(facts, brew_plist_env={})))
        assert clean["brew"].severity == "ok"

    def test_proxy_down_with_installed_service(self) -> None:
        """A proxy that does not answer gets its service's restart command and logs."""
        service = InstalledService(
            "/h/.config/systemd/user/ollama-lanes.service",
            "/h/.local/bin/lanes",
            True,
            "systemctl --user restart ollama-lanes.service",
            "journalctl --user -u ollama-lanes.service",
        )
        facts = replace(GREEN, proxy=ProxyProbe(GREEN.proxy.url, error="refused"), service=service)
        fix = failed(facts)["proxy"].fix or ""
        assert "systemctl --user restart ollama-lanes.service" in fix
        assert "journalctl" in fix

    def test_proxy_other_version(self) -> None:
        """A proxy still running an older lanes than the one installed is reported."""
        facts = replace(GREEN, proxy=replace(GREEN.proxy, version="0.0.9"))
        assert "runs version 0.0.9" in failed(facts)["proxy"].summary

    def test_service_program_gone(self) -> None:
        """A service whose program was deleted (say, a removed venv) is reported."""
        service = InstalledService("/p.plist", "/gone/lanes", False, "launchctl ...", "/log")
        assert "does not exist any more" in failed(replace(GREEN, service=service))["proxy"].summary

    def test_kv_memory(self) -> None:
        """KV tokens are num_ctx × NUM_PARALLEL per model; a huge product is a warning."""
        info: dict[str, object] = {
            "general.architecture": "llama",
            "llama.block_count": 32,
            "llama.attention.head_count": 32,
            "llama.attention.head_count_kv": 8,
            "llama.embedding_length": 4096,
        }
        models = (
            loaded("small:latest", 4096, 5 * 1024**3),
            loaded("huge:latest", 131072, 9 * 1024**3),
        )
        facts = replace(
            GREEN,
            ollama=replace(GREEN.ollama, models=models),
            model_names=("small:latest", "huge:latest"),
            model_facts={
                "small:latest": ModelFacts("small:latest", ("completion",), "llama", info)
            },
        )
        kv = [f for f in diagnose(facts) if f.check == "kv_memory"]
        assert kv[0].severity == "ok"
        assert "num_ctx 4096 × 2 lane(s) = 8192 tokens of KV cache ≈ 1.0 GiB" in kv[0].summary
        assert kv[1].severity == "warn"
        assert "262144 tokens" in kv[1].summary

    def test_kv_memory_counts_the_lanes_ollama_runs(self) -> None:
        """An embedding model holds one slot of KV cache whatever NUM_PARALLEL says."""
        models = (loaded("all-minilm:latest", 512, 46_000_000),)
        facts = replace(
            GREEN,
            ollama=replace(GREEN.ollama, models=models),
            model_names=("all-minilm:latest",),
            model_facts={"all-minilm:latest": ModelFacts("all-minilm:latest", ("embedding",))},
        )
        kv = by_check(diagnose(facts))["kv_memory"]
        assert "num_ctx 512 × 1 lane(s) = 512 tokens" in kv.summary


class TestSpeedups:
    def test_all_loaded_is_ok(self) -> None:
        """With every compiled extension loaded the check is ok and names them."""
        facts = replace(GREEN, speedups=(Speedup("multidict", True, "multidict._multidict"),))
        found = by_check(diagnose(facts))["speedups"]
        assert (found.severity, found.summary) == (
            "ok",
            "The compiled speed-ups are loaded (multidict).",
        )

    def test_a_missing_one_warns_with_the_fix(self) -> None:
        """A pure-Python parser is named, with the environment variables that cause it."""
        missing = Speedup("aiohttp parser (llhttp)", False, "aiohttp.http_parser")
        found = by_check(diagnose(replace(GREEN, speedups=(missing,))))["speedups"]
        assert found.severity == "warn"
        assert "aiohttp parser (llhttp) (aiohttp.http_parser)" in found.summary
        assert found.fix is not None
        assert "AIOHTTP_NO_EXTENSIONS" in found.fix


class TestSpeedupsOfThisInterpreter:
    def test_this_interpreter_has_them_all(self) -> None:
        """The test venv runs with every compiled extension (the benchmarks assume it)."""
        assert [s.name for s in speedups() if not s.loaded] == []

    def test_the_reader_sees_them_switched_off(self) -> None:
        """In a child with AIOHTTP_NO_EXTENSIONS=1 the reader reports aiohttp's two as missing."""
        code = (
            "from proxy.machine.speedups import speedups;"
            "print(','.join(s.name for s in speedups() if not s.loaded))"
        )
        env = {**os.environ, "AIOHTTP_NO_EXTENSIONS": "1"}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "aiohttp parser (llhttp),aiohttp header writer"
