"""Configuration of several Ollama hosts: `[[serve.upstreams]]` entries and `[serve.pin]` rules."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["PinSpec", "UpstreamSpec", "http_url", "model_key", "resolve_lanes"]


def http_url(value: str) -> str:
    """An upstream base URL: http or https, without a trailing slash."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


DEFAULT_MAX_LOADED = 3  # Ollama's OLLAMA_MAX_LOADED_MODELS default on one GPU or on CPU


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
    lanes: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = 1
    model_lanes: dict[str, Annotated[int, Field(ge=1, le=256)]] = Field(
        default_factory=dict, description="per-model lane limits, e.g. embedding models: 1"
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


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_lanes(spec: UpstreamSpec, env: Mapping[str, str] | None = None) -> int:
    """Lanes for a host; `auto` reads OLLAMA_NUM_PARALLEL for a loopback host, else 1.

    Ollama does not report its parallelism over HTTP, so `auto` can only trust this machine's
    environment (the same variable a local Ollama reads); anything else gets the safe value 1.
    """
    if spec.lanes != "auto":
        return spec.lanes
    raw = (os.environ if env is None else env).get("OLLAMA_NUM_PARALLEL", "").strip()
    if _is_loopback_url(spec.url) and raw.isdigit() and int(raw) >= 1:
        return min(int(raw), 256)
    return 1
