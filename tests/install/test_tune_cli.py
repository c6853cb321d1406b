"""`lanes tune` against the simulator: the knee its slots imply, --apply, --request, --url."""

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
from proxy.status import ExitStatus
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url

# Linear batching (alpha 1) inside 3 slots: throughput grows up to 3 at once, then stops.
THREE_SLOTS: dict[str, Any] = {
    "lanes": 3,
    "batch_alpha": 1.0,
    "load_seconds": 0.0,
    "prefill_tps": 1_000_000.0,
    "decode_tps": 10_000.0,
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
            "--ollama", base_url(sim), "--max-lanes", "4", "--rounds", "4", "--config", str(config)
        )
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS
        assert "Recommended lanes: 3 " in out, out
        assert "it ran at most 3 together" in out, out
        assert config.read_text() == ""

    async def test_apply_writes_lanes_into_serve_and_keeps_the_rest(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--apply sets [serve] lanes and tune_knee to the knee; the rest stays as it was."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        config.write_text(
            '[serve]\nlisten = "127.0.0.1:11435"\nlanes = 8\n\n[miner]\nworkers = 4\n'
        )
        status = await _tune(
            "--ollama", base_url(sim), "--max-lanes", "4", "--rounds", "4",
            "--config", str(config), "--apply",
        )  # fmt: skip
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS, out
        doc = tomllib.loads(config.read_text())
        serve = {"listen": "127.0.0.1:11435", "lanes": 3, "tune_knee": 3}
        assert doc == {"serve": serve, "miner": {"workers": 4}}
        assert "restart it" in out
        assert "lanes install --lanes 3" in out

    async def test_record_writes_only_the_knee(
        self, simulator: SimulatorFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--record sets [serve] tune_knee, which the proxy's settings read; lanes stay."""
        sim = await simulator(**THREE_SLOTS)
        config = tmp_path / "config.toml"
        config.write_text("[serve]\nlanes = 8\n")
        status = await _tune(
            "--ollama", base_url(sim), "--max-lanes", "4", "--rounds", "4",
            "--config", str(config), "--record",
        )  # fmt: skip
        out = capsys.readouterr().out
        assert status == ExitStatus.SUCCESS, out
        assert tomllib.loads(config.read_text()) == {"serve": {"lanes": 8, "tune_knee": 3}}
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
