"""Settings of `lanes serve`: env prefix LANES_, config table [serve], flags override both."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from proxy.browsers import split_origins
from proxy.config import FileSettings, SettingsError, load_settings
from proxy.upstream_specs import Lanes, PinSpec, UpstreamSpec, http_url, model_key

__all__ = [
    "ListenAddress",
    "Priority",
    "ProxySettings",
    "connect_url",
    "is_loopback_host",
    "proxy_endpoint",
    "split_listen",
]

Priority = Literal["interactive", "normal", "batch"]


def split_listen(listen: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 in brackets) into its parts."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def connect_url(listen: str) -> str:
    """The base URL a local client uses to reach a server bound to `listen`."""
    host, port = split_listen(listen)
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def proxy_endpoint(url: str | None, config_file: Path | None = None) -> tuple[str, str | None]:
    """Where a client reaches the local proxy, and the bearer token it needs.

    `url` (a flag) if given, else the `[serve]` listen address; the token from the settings.
    Settings that do not load are an error only when there is no `url` to fall back on.
    """
    try:
        settings = load_settings(ProxySettings, {}, config_file=config_file)
    except SettingsError:
        if url:
            return url, None
        raise
    token = settings.token
    return (url, token) if url else (connect_url(settings.listen), token)


def _parsed_listen(value: str) -> str:
    split_listen(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_parsed_listen)]
"""A `HOST:PORT` bind address, checked when the settings load."""


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ProxySettings(FileSettings):
    """Everything `lanes serve` can be told."""

    model_config = SettingsConfigDict(env_prefix="LANES_", extra="forbid", validate_default=True)
    config_section: ClassVar[str] = "serve"

    listen: ListenAddress = Field(
        "127.0.0.1:11435", description="address the proxy binds, HOST:PORT"
    )
    upstream: str = Field("http://127.0.0.1:11434", description="the Ollama server's URL")
    lanes: Lanes = Field(
        "auto",
        description='requests sent upstream at once: "auto" (each model\'s lanes, learned '
        "from Ollama) or a number (a cap shared by all models, as set by hand)",
    )
    num_parallel: int | None = Field(
        None,
        ge=1,
        le=256,
        description="Ollama's OLLAMA_NUM_PARALLEL, when the proxy cannot read it (a remote host)",
    )
    model_lanes: dict[str, Annotated[int, Field(ge=1, le=256)]] = Field(
        default_factory=dict, description="model -> lanes, overriding the lane map (JSON object)"
    )
    max_queue: int = Field(1024, ge=0, description="requests waiting beyond this get 503")
    aging_s: float = Field(30.0, gt=0, description="seconds of waiting that promote a class")
    max_wait_interactive_s: float | None = Field(None, gt=0, description="queue-wait limit")
    max_wait_normal_s: float | None = Field(None, gt=0, description="queue-wait limit")
    max_wait_batch_s: float | None = Field(None, gt=0, description="queue-wait limit")
    client_priorities: dict[str, Priority] = Field(
        default_factory=dict, description="client key -> priority when no header says"
    )
    fairness: Literal["tokens", "requests"] = Field(
        "tokens",
        description="turns inside a class: tokens (fair share of served work) or requests "
        "(round-robin by request)",
    )
    w_in: float = Field(1.0, ge=0, description="fair-share cost of one prompt token")
    w_out: float = Field(2.0, ge=0, description="fair-share cost of one output token")
    client_weights: dict[str, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=dict, description="client key -> share weight (2 = twice the share)"
    )
    auth_token: SecretStr | None = Field(
        None, description="bearer token clients must send (not empty; unset means none)"
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins allowed besides Ollama's defaults and OLLAMA_ORIGINS",
    )
    timeout_client_write_s: float = Field(
        30.0, gt=0, description="a client that reads nothing this long loses its answer and lane"
    )
    progress_interval_s: float = Field(
        2.0,
        gt=0,
        description="seconds between the SSE comments sent to a waiting /v1 stream that asks "
        "with X-Lanes-Progress: sse",
    )
    timeout_client_header_s: float = Field(
        15.0, gt=0, description="a connection that sends no whole request head this long closes"
    )
    timeout_connect_s: float = Field(10.0, gt=0, description="upstream TCP connect timeout")
    timeout_first_byte_s: float = Field(600.0, gt=0, description="wait for upstream headers")
    timeout_idle_s: float = Field(300.0, gt=0, description="longest gap between chunks")
    upstream_connections: int = Field(
        256, ge=1, description="upstream keep-alive pool size, shared by lanes and pass-through"
    )
    drain_timeout_s: float = Field(30.0, ge=0, description="grace for running requests on stop")
    max_body_mb: int = Field(256, ge=1, description="largest accepted request body, MiB")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_client_labels: bool = Field(
        False, description="label /metrics histograms by client key (more series)"
    )
    reload_warn_ms: float = Field(
        500.0, gt=0, description="load_duration on a warm model that warns of a reload"
    )
    upstream_queue_warn_ms: float = Field(
        500.0, gt=0, description="wait inside Ollama beyond prefill that warns of queueing"
    )
    stats_poll_s: float = Field(
        5.0, gt=0, description="deprecated and ignored: every host is polled each health_interval_s"
    )
    upstreams: list[UpstreamSpec] = Field(
        default_factory=list, description="several Ollama hosts (JSON list); replaces --upstream"
    )
    pin: dict[str, PinSpec] = Field(
        default_factory=dict, description="model -> forced num_ctx / keep_alive (JSON object)"
    )
    affinity_wait_s: float = Field(
        5.0, ge=0, description="extra wait to keep a loaded model busy before a swap (0 = off)"
    )
    health_interval_s: float = Field(
        5.0,
        gt=0,
        description="seconds between polls of each host's /api/version, /api/ps and /api/tags",
    )
    breaker_failures: int = Field(
        3, ge=1, description="consecutive upstream failures that take a host out"
    )
    breaker_open_s: float = Field(10.0, gt=0, description="seconds a tripped host stays out")
    tune_knee: int | None = Field(
        None,
        ge=1,
        le=256,
        description="requests at once past which Ollama got no faster, as `lanes tune` measured "
        "(it writes this)",
    )
    verdict_window_s: float = Field(
        60.0, ge=1, le=300, description="seconds of the recent past the verdict judges"
    )

    @field_validator("upstream")
    @classmethod
    def _upstream_is_http(cls, value: str) -> str:
        return http_url(value)

    @field_validator("model_lanes")
    @classmethod
    def _canonical_lanes(cls, value: dict[str, int]) -> dict[str, int]:
        return {model_key(name): lanes for name, lanes in value.items()}

    @field_validator("pin")
    @classmethod
    def _canonical_pins(cls, value: dict[str, PinSpec]) -> dict[str, PinSpec]:
        return {model_key(name): spec for name, spec in value.items()}

    @field_validator("upstreams")
    @classmethod
    def _unique_names(cls, value: list[UpstreamSpec]) -> list[UpstreamSpec]:
        names = [spec.name for spec in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"upstream name used twice: {', '.join(dupes)}")
        return value

    def upstream_specs(self) -> list[UpstreamSpec]:
        """The hosts: the `upstreams` list, else one named `default` from upstream and lanes."""
        if self.upstreams:
            return list(self.upstreams)
        return [
            UpstreamSpec(
                name="default",
                url=self.upstream,
                lanes=self.lanes,
                num_parallel=self.num_parallel,
                model_lanes=self.model_lanes,
                knee=self.tune_knee,
            )
        ]

    @property
    def token(self) -> str | None:
        """The bearer token clients must send; None when none is configured.

        The one predicate for "a token is configured": an empty token never loads.
        """
        return None if self.auth_token is None else self.auth_token.get_secret_value()

    @field_validator("auth_token")
    @classmethod
    def _token_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("the token is empty; set a real token, or leave it unset for none")
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else split_origins(text)
        return value

    @model_validator(mode="after")
    def _non_loopback_needs_token(self) -> ProxySettings:
        host, _ = split_listen(self.listen)
        if not is_loopback_host(host) and self.token is None:
            raise ValueError(
                f"listen {self.listen} is not loopback; set LANES_AUTH_TOKEN to allow it"
            )
        return self
