"""`lanes tune` against the simulator: the knee its slots imply, --apply, --request, --url.

--apply with a hand-set `lanes` signals a real `lanes serve` process (port 0, its address read
from its `serve_started` log line) and reads the new cap back from its /stats.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from proxy.__main__ import main
from proxy.config import load_settings
from proxy.settings import ProxySettings
from proxy.stats.client import fetch_stats
from proxy.status import ExitStatus
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.install.conftest import LINUX_PROC
from tests.install.serve_process import serve_process
from tests.machine import processes
from tests.ports import reserved_port
from tests.waiting import PATIENCE_S, wait_for

# Linear batching (alpha 1) inside 3 slots: throughput grows up to 3 at once, then stops. The
# knee is the smallest count within 5% of the best. With one request per worker per step
# (`--rounds 1`), 4 at once on 3 slots takes two service times for 4 requests, 2/3 of the
# rate of 3 at once, so only a stall of over half a service time during the 3-at-once step
# can move the knee; a request decodes for about 0.43 s (~860 tokens at 2,000/s). At 10,000
# tokens/s with 4 rounds (86 ms a request; 4 at once then ran at 8/9 of 3's rate) a stall
# under the CPU hog of `make test-repeat` did: the knee read 4.
THREE_SLOTS: dict[str, Any] = {
    "lanes": 3,
    "batch_alpha": 1.0,
    "load_seconds": 0.0,
    "prefill_tps": 1_000_000.0,
    "decode_tps": 2_000.0,
}


async def _tune(*argv: str) -> int:
    """Run `lanes tune` in a thread: it runs its own event loop, the servers run on ours."""
    return await asyncio.to_thread(main, ["tune", *argv])


class TestKnee:
    async def test_three_slots_give_a_knee_of_three(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A simulator whose throughput stops growing past 3 at once yields 3."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        config.write_text("")
        status = await _tune(
            "--ollama", base_url(sim), "--max-lanes", "4", "--rounds", "1", "--config", str(config)
        )
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS
        assert "Recommended lanes: 3 " in out, out
        assert "it ran at most 3 together" in out, out
        assert config.read_text() == ""


def restart_advice(out: str) -> list[str]:
    """The lines of `out` that tell the user to restart the proxy."""
    return [
        line for line in out.splitlines() if "restart it" in line or "restart the proxy" in line
    ]


async def _apply(sim: str, config: Path, *extra: str) -> int:
    """`lanes tune --apply` over the simulator at `sim` (a 3-slot one: the knee is 3)."""
    return await _tune(
        "--ollama", sim, "--max-lanes", "4", "--rounds", "1", "--config", str(config),
        "--apply", *extra,
    )  # fmt: skip


class TestApply:
    async def test_auto_lanes_record_only_the_knee_and_print_the_install_command(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With lanes "auto" (unset) the knee is for Ollama: only tune_knee is written (for the
        verdict), lanes stay unset, and the install command shows."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        with reserved_port() as port:
            config.write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\n')
            status = await _apply(base_url(sim), config)
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS, out
        doc = tomllib.loads(config.read_text())
        assert doc == {"serve": {"listen": f"127.0.0.1:{port}", "tune_knee": 3}}
        assert 'lanes are "auto"' in out
        assert "Only tune_knee = 3 was written, for the verdict." in out
        assert "`lanes install --lanes 3`" in out
        assert not restart_advice(out)

    async def test_hand_set_lanes_without_a_proxy_are_written_for_its_next_start(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A hand-set lanes gets the knee, other keys and tables stay; no proxy runs there."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        with reserved_port() as port:
            config.write_text(
                f'[serve]\nlisten = "127.0.0.1:{port}"\nlanes = 8\n\n[miner]\nworkers = 4\n'
            )
            status = await _apply(base_url(sim), config)
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS, out
        doc = tomllib.loads(config.read_text())
        assert doc == {
            "serve": {"listen": f"127.0.0.1:{port}", "lanes": 3, "tune_knee": 3},
            "miner": {"workers": 4},
        }
        assert f"Wrote lanes = 3 and tune_knee = 3 into [serve] of {config} (lanes was 8)." in out
        assert (
            f"No proxy runs at http://127.0.0.1:{port}: the next start picks up lanes = 3." in out
        )
        assert not restart_advice(out)

    @LINUX_PROC
    async def test_hand_set_lanes_reload_the_running_proxy(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A running `lanes serve` of this user gets SIGHUP and its /stats shows the new cap."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[serve]\nlisten = "127.0.0.1:0"\nupstream = "{base_url(sim)}"\nlanes = 8\n'
        )
        env = processes.child_env(tmp_path)
        with serve_process(config, env, tmp_path / "serve.log") as served:
            before = await fetch_stats(served.url)
            assert before["upstreams"]["default"]["cap"] == 8
            status = await _apply(base_url(sim), config, "--url", served.url)
            out = capsys.readouterr().out
            assert status == ExitStatus.SUCCESS, out
            assert f"Sent SIGHUP to the proxy at {served.url} (pid {served.pid})" in out

            async def cap() -> bool:
                stats = await fetch_stats(served.url)
                return bool(stats["upstreams"]["default"]["cap"] == 3)

            await wait_for(cap, timeout=PATIENCE_S, what="the proxy's cap to become 3")
        assert not restart_advice(out)

    async def test_a_proxy_that_is_not_lanes_serve_is_not_signalled(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """A proxy inside this test process (pytest, not `lanes serve`) is left alone."""
        sim = await simulator(**THREE_SLOTS)
        prx = await proxy(upstream=base_url(sim), lanes=8)
        config = tmp_path / "config.toml"
        config.write_text("[serve]\nlanes = 8\n")
        status = await _apply(base_url(sim), config, "--url", base_url(prx))
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS, out
        assert f"The proxy at {base_url(prx)} was not signalled (" in out
        assert "on SIGHUP (`kill -HUP <pid>`) or at its next start." in out

    async def test_record_writes_only_the_knee(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--record sets [serve] tune_knee, which the proxy's settings read; lanes stay."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        with reserved_port() as port:
            config.write_text(f'[serve]\nlisten = "127.0.0.1:{port}"\nlanes = 8\n')
            status = await _tune(
                "--ollama", base_url(sim), "--max-lanes", "4", "--rounds", "1",
                "--config", str(config), "--record",
            )  # fmt: skip
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS, out
        doc = tomllib.loads(config.read_text())
        assert doc == {"serve": {"listen": f"127.0.0.1:{port}", "lanes": 8, "tune_knee": 3}}
        settings = load_settings(ProxySettings, {}, config_file=config)
        assert settings.upstream_specs()[0].knee == 3


class TestInputs:
    async def test_request_file_and_model_flag(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--request sends that body (here /api/generate) with --model replacing its model."""
        sim = await simulator(**THREE_SLOTS)
        request = tmp_path / "request.json"
        body = {"model": "nope", "prompt": "Say hello.", "options": {"num_predict": 40}}
        request.write_text(json.dumps(body))
        config = tmp_path / "config.toml"
        config.write_text("")
        status = await _tune(
            "--ollama", base_url(sim), "--max-lanes", "2", "--rounds", "1",
            "--request", str(request), "--model", "llama3.2", "--config", str(config),
        )  # fmt: skip
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS
        assert "model llama3.2" in out
        assert "Sweeping [1, 2]" in out

    async def test_url_reads_the_upstream_from_the_proxy(
        self,
        simulator: SimulatorFactory,
        proxy: ProxyFactory,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """--url finds Ollama through a running proxy's /stats."""
        sim = await simulator(**THREE_SLOTS)
        prx = await proxy(upstream=base_url(sim), lanes=2)
        config = tmp_path / "config.toml"
        config.write_text("")
        status = await _tune(
            "--url", base_url(prx), "--max-lanes", "1", "--rounds", "1", "--config", str(config)
        )
        assert status == ExitStatus.SUCCESS
        assert f"at {base_url(sim)}," in capsys.readouterr().out

    async def test_unreachable_ollama_exits_unavailable(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Nobody listening: one line on stderr and exit status 3."""
        config = tmp_path / "config.toml"
        config.write_text("")
        status = await _tune("--ollama", "http://127.0.0.1:9", "--config", str(config))
        assert status == ExitStatus.UNAVAILABLE
        assert "Ollama is not answering" in capsys.readouterr().err
