"""`lanes simulate` settings and the server starter."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from proxy.__main__ import build_parser
from proxy.commands.simulate import settings_from_args
from proxy.config import SettingsError
from proxy.simulator.server import start
from proxy.simulator.settings import SimulatorSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("OLLAMA_", "LANES_SIM_")) or name == "LANES_CONFIG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def parse(*argv: str) -> SimulatorSettings:
    return settings_from_args(build_parser().parse_args(["simulate", *argv]))


class TestSettings:
    def test_defaults_are_ollamas(self) -> None:
        """Without flags: 1 lane, queue 512, the four default models."""
        settings = parse()
        assert (
            settings.lanes,
            settings.max_queue,
            settings.listen,
        ) == (1, 512, "127.0.0.1:11434")
        assert [m.name for m in settings.models] == [
            "qwen2.5:7b-instruct",
            "llama3.2:latest",
            "all-minilm:latest",
            "qwen3-vl:8b",
        ]
        assert settings.slots_for(settings.models[2]) == 1

    def test_ollama_env_sets_lanes_and_queue(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """OLLAMA_NUM_PARALLEL and OLLAMA_MAX_QUEUE are the defaults when set."""
        monkeypatch.setenv("OLLAMA_NUM_PARALLEL", "4")
        monkeypatch.setenv("OLLAMA_MAX_QUEUE", "9")
        monkeypatch.setenv("OLLAMA_KEEP_ALIVE", "10m")
        monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "8192")
        settings = parse()
        assert (settings.lanes, settings.max_queue) == (4, 9)
        assert (settings.keep_alive_s, settings.default_num_ctx) == (600.0, 8192)

    def test_flags_beat_env_beat_config(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """--lanes over LANES_SIM_LANES over [simulate] lanes."""
        config = tmp_path / "config.toml"
        config.write_text("[simulate]\nlanes = 2\ndecode_tps = 99.0\n", encoding="utf-8")
        assert (
            parse("--config", str(config)).lanes,
            parse("--config", str(config)).decode_tps,
        ) == (2, 99.0)
        monkeypatch.setenv("LANES_CONFIG", str(config))
        assert parse().lanes == 2
        monkeypatch.setenv("LANES_SIM_LANES", "3")
        assert parse("--config", str(config)).lanes == 3
        assert parse("--config", str(config), "--lanes", "5").lanes == 5

    def test_model_flags(self) -> None:
        """--model NAME[:k=v,...] replaces the defaults; a known name keeps its details."""
        settings = parse(
            "--model", "llama3.2:ctx=8192,lanes=3,error_rate=0.5", "--model", "nomic:embed"
        )
        llama, nomic = settings.models
        assert (
            llama.name,
            llama.context_length,
            llama.lanes,
            llama.fault_error_rate,
        ) == ("llama3.2:latest", 8192, 3, 0.5)
        assert llama.parameter_size == "3.2B"
        assert (nomic.name, nomic.embedding_only) == ("nomic:latest", True)

    def test_fault_flags(self) -> None:
        """Fault flags set the run-wide values."""
        settings = parse("--fault-hang-s", "2", "--fault-drop-after-chunks", "5")
        assert (settings.fault_hang_s, settings.fault_drop_after_chunks) == (2.0, 5)

    def test_bad_setting_is_one_line(self) -> None:
        """An invalid value names the setting in one line."""
        with pytest.raises(SettingsError) as info:
            parse("--lanes", "0")
        assert "lanes" in str(info.value)
        assert "\n" not in str(info.value)


class TestServe:
    async def test_start_binds_a_free_port(self) -> None:
        """start() on port 0 serves the app and reports its URL."""
        running = await start(SimulatorSettings(listen="127.0.0.1:0", load_seconds=0))
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(running.url + "/api/version") as resp,
            ):
                assert resp.status == 200
        finally:
            await running.stop()
