"""Settings of `miner`: defaults < TOML config [miner] < env MINER_* < command-line flags.

Loaded with `proxy.config.load_settings(MinerSettings, ...)`: the same loader, config file and
error lines as `lanes` (proxy.config imports no aiohttp).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from proxy.config import FileSettings

__all__ = ["MinerSettings", "default_db_path"]


def default_db_path() -> Path:
    """The per-user SQLite database the miner writes unless told otherwise."""
    return platformdirs.user_data_path("ollama-lanes") / "miner.db"


class MinerSettings(FileSettings):
    """Everything `miner` can be told; built once in `__main__` and passed down."""

    model_config = SettingsConfigDict(env_prefix="MINER_", extra="forbid", validate_default=True)
    config_section: ClassVar[str] = "miner"

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
    token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("token", "MINER_TOKEN", "LANES_AUTH_TOKEN"),
        description="bearer token for a proxy that needs one (also read from LANES_AUTH_TOKEN)",
    )
    client: str = Field("miner", min_length=1, description="X-Lanes-Client header")
    priority: str = Field("batch", min_length=1, description="X-Lanes-Priority header")
    segment_min_tokens: int = Field(300, ge=1, description="close a segment after this size")
    segment_max_tokens: int = Field(1000, ge=1, description="never grow a segment past this")
    progress: bool | None = Field(None, description="progress bar; default: when on a TTY")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "warning", description="log level of the stderr event log"
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("token")
    @classmethod
    def _token_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("the token is empty; set a real token, or leave it unset for none")
        return value

    @field_validator("db")
    @classmethod
    def _db_expanded(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _budget_ordered(self) -> MinerSettings:
        if self.segment_min_tokens > self.segment_max_tokens:
            raise ValueError("segment_min_tokens must not exceed segment_max_tokens")
        return self
