"""Settings of `miner`: defaults < TOML config [miner] < env MINER_* < command-line flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = [
    "CONFIG_ENV",
    "MinerSettings",
    "SettingsError",
    "default_config_path",
    "default_db_path",
    "load_settings",
]

CONFIG_ENV = "LANES_CONFIG"
CONFIG_SECTION = "miner"

_config_file: ContextVar[Path | None] = ContextVar("miner_config_file", default=None)


class SettingsError(Exception):
    """A setting is invalid; the message is one line that names it."""


def default_config_path() -> Path:
    """The per-user config file shared by every ollama-lanes command."""
    return platformdirs.user_config_path("ollama-lanes") / "config.toml"


def default_db_path() -> Path:
    """The per-user SQLite database the miner writes unless told otherwise."""
    return platformdirs.user_data_path("ollama-lanes") / "miner.db"


class _TomlTable(PydanticBaseSettingsSource):
    """Reads the `[miner]` table of the TOML config file, if there is one."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        path = _config_file.get()
        if path is not None and path.is_file():
            try:
                doc = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"config file {path}: {exc}") from exc
            table = doc.get(CONFIG_SECTION, {})
            if not isinstance(table, dict):
                raise SettingsError(f"config file {path}: [{CONFIG_SECTION}] must be a table")
            self._data = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class MinerSettings(BaseSettings):
    """Everything `miner` can be told; built once in `__main__` and passed down."""

    model_config = SettingsConfigDict(env_prefix="MINER_", extra="forbid", validate_default=True)

    url: str = Field("http://127.0.0.1:11435", description="proxy (or Ollama) base URL")
    model: str = Field("qwen2.5:7b-instruct", description="model to mine with")
    api: Literal["ollama", "openai"] = Field(
        "ollama", description="native /api/chat or OpenAI /v1/chat/completions"
    )
    workers: int = Field(12, ge=1, le=512, description="concurrent requests (worker tasks)")
    db: Path = Field(default_factory=default_db_path, description="SQLite database path")
    num_ctx: int = Field(8192, ge=256, description="context size, pinned for the whole run")
    num_predict: int = Field(2048, ge=16, description="cap on generated tokens per call")
    keep_alive: str = Field("1h", description="how long Ollama keeps the model loaded")
    timeout_s: float = Field(600.0, gt=0, description="total time allowed for one HTTP call")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout")
    retry_attempts: int = Field(8, ge=0, description="retries per call (503/502/504/network)")
    retry_base_s: float = Field(0.5, gt=0, description="first backoff delay")
    retry_max_s: float = Field(30.0, gt=0, description="longest single backoff delay")
    retry_budget_s: float = Field(300.0, ge=0, description="total backoff time per call")
    client: str = Field("miner", min_length=1, description="X-Lanes-Client header")
    priority: str = Field("batch", min_length=1, description="X-Lanes-Priority header")
    segment_min_tokens: int = Field(300, ge=1, description="close a segment after this size")
    segment_max_tokens: int = Field(1000, ge=1, description="never grow a segment past this")
    progress: bool | None = Field(None, description="progress bar; default: when on a TTY")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", description="log level of the stderr event log"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlTable(settings_cls))

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("db")
    @classmethod
    def _db_expanded(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _budget_ordered(self) -> MinerSettings:
        if self.segment_min_tokens > self.segment_max_tokens:
            raise ValueError("segment_min_tokens must not exceed segment_max_tokens")
        return self


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = [str(part) for part in err.get("loc", ())]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not loc:
        return f"invalid settings: {msg}"
    name = loc[0]
    where = f"flag --{name.replace('_', '-')}, env MINER_{name.upper()}, or [miner] {name}"
    got = err.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"invalid setting '{name}' ({where}): {msg}{shown}"


def load_settings(
    overrides: Mapping[str, Any] | None = None, config_file: Path | None = None
) -> MinerSettings:
    """Build settings from flags (`overrides`, None values dropped), env and the config file."""
    if config_file is None and os.environ.get(CONFIG_ENV):
        config_file = Path(os.environ[CONFIG_ENV])
    explicit = config_file is not None
    path = config_file if config_file is not None else default_config_path()
    if explicit and not path.is_file():
        raise SettingsError(f"config file {path} does not exist")
    token = _config_file.set(path)
    try:
        values = {k: v for k, v in (overrides or {}).items() if v is not None}
        return MinerSettings(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    finally:
        _config_file.reset(token)
