"""Configuration of several Ollama hosts: `[[serve.upstreams]]` entries and `[serve.pin]` rules."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["Lanes", "PinSpec", "UpstreamSpec", "http_url", "is_loopback_url", "model_key"]


def http_url(value: str) -> str:
    """An upstream base URL: http or https, without a trailing slash."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


DEFAULT_MAX_LOADED = 3  # Ollama's OLLAMA_MAX_LOADED_MODELS default on one GPU or on CPU

Lanes = Annotated[int, Field(ge=1, le=256)] | Literal["auto"]
"""A host's lanes: "auto" (learned from Ollama, per model) or a number set by hand (a cap)."""


def model_key(name: str) -> str:
    """The name Ollama lists a model under: `llama3.2` -> `llama3.2:latest`."""
    name = name.strip()
    if not name:
        return ""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class UpstreamSpec(BaseModel):
    """One Ollama host the proxy sends requests to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str
    lanes: Lanes = "auto"
    num_parallel: int | None = Field(
        None,
        ge=1,
        le=256,
        description="the host's OLLAMA_NUM_PARALLEL, when the proxy cannot read it (remote)",
    )
    model_lanes: dict[str, Annotated[int, Field(ge=1, le=256)]] = Field(
        default_factory=dict, description="per-model lanes, overriding the lane map's rules"
    )
    knee: int | None = Field(
        None,
        ge=1,
        le=256,
        description="requests at once past which this host got no faster (`lanes tune`)",
    )
    weight: float = Field(1.0, gt=0, description="share of load relative to the other hosts")
    max_loaded_models: int = Field(
        DEFAULT_MAX_LOADED, ge=1, description="the host's OLLAMA_MAX_LOADED_MODELS"
    )
    auth_header: SecretStr | None = Field(
        None, description="Authorization header value sent to this host, e.g. 'Bearer xyz'"
    )

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        return http_url(value)

    @field_validator("model_lanes")
    @classmethod
    def _canonical_models(cls, value: dict[str, int]) -> dict[str, int]:
        return {model_key(name): lanes for name, lanes in value.items()}


class PinSpec(BaseModel):
    """Options the proxy sets on every native request for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_ctx: int | None = Field(None, ge=4, description="options.num_ctx to force")
    keep_alive: int | str | None = Field(None, description="keep_alive to force, e.g. '1h'")


def is_loopback_url(url: str) -> bool:
    """True for a URL on this machine's loopback (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
