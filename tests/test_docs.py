"""The README stays true: every setting of every command is documented, with its env name."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from miner.settings import MinerSettings
from proxy.settings import ProxySettings
from proxy.simulator.settings import SimulatorSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cls", [ProxySettings, SimulatorSettings, MinerSettings])
def test_every_setting_is_documented(cls: type[BaseSettings]) -> None:
    """Each field's environment variable appears in the README, whole or in a table whose
    header names the prefix (`LANES_SIM_…`)."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    missing = [
        f"{prefix}{name.upper()}"
        for name in cls.model_fields
        if f"{prefix}{name.upper()}" not in README and f"`{name.upper()}`" not in README
    ]
    assert missing == []


def test_quick_start_names_the_two_commands() -> None:
    """The README opens with `make demo` and `make test`."""
    head = README[: README.index("## Glossary")]
    assert "make demo" in head
    assert "make test" in head
