"""Settings loading: defaults < TOML config file < environment < command-line flags.

The one place that knows where the config file is (`--config`, else `$LANES_CONFIG`, else the
per-user default) and how a settings error reads. `lanes` and `miner` both load through it; it
imports no aiohttp, so the miner's pure modules may use it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import platformdirs
from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

__all__ = [
    "CONFIG_ENV",
    "FileSettings",
    "SettingsError",
    "config_path",
    "default_config_path",
    "load_settings",
    "named_config_path",
]

CONFIG_ENV = "LANES_CONFIG"

_config_file: ContextVar[Path | None] = ContextVar("lanes_config_file", default=None)

S = TypeVar("S", bound="FileSettings")


class SettingsError(Exception):
    """A setting is invalid; the message is one line that names it."""


def default_config_path() -> Path:
    """The per-user config file, used when `$LANES_CONFIG` names none."""
    return platformdirs.user_config_path("ollama-lanes") / "config.toml"


def named_config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The config file `$LANES_CONFIG` names in `env` (default: os.environ); None when unset."""
    value = (os.environ if env is None else env).get(CONFIG_ENV)
    return Path(value) if value else None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file every command reads and `lanes install` writes: `$LANES_CONFIG`, else
    the per-user default."""
    return named_config_path(env) or default_config_path()


class _TomlSection(PydanticBaseSettingsSource):
    """Reads the `[section]` table of the TOML config file, if there is one."""

    def __init__(self, settings_cls: type[BaseSettings], section: str) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = {}
        path = _config_file.get()
        if path is not None and path.is_file():
            try:
                doc = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"config file {path}: {exc}") from exc
            table = doc.get(section, {})
            if not isinstance(table, dict):
                raise SettingsError(f"config file {path}: [{section}] must be a table")
            self._data = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class FileSettings(BaseSettings):
    """Base for one command's settings: flags, then env, then the config file's table."""

    model_config = SettingsConfigDict(extra="forbid", validate_default=True)
    config_section: ClassVar[str] = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        section = getattr(settings_cls, "config_section", "") or "lanes"
        return (init_settings, env_settings, _TomlSection(settings_cls, section))


_UNION_MEMBER = re.compile(r"constrained-\w+|\w+\[.*\]|int|str|float|bool")


def _describe(cls: type[FileSettings], exc: ValidationError) -> str:
    """One line naming the setting, where it can be set, and what was wrong with it."""
    err = exc.errors()[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    # A union (`lanes`: a number or "auto") names the member that failed, as in
    # ("lanes", "constrained-int"): that is pydantic's detail, not a part of the setting.
    loc = [str(part) for part in err.get("loc", ()) if not _UNION_MEMBER.fullmatch(str(part))]
    if not loc:
        return f"invalid settings: {msg}"
    name = loc[0]
    prefix = str(cls.model_config.get("env_prefix", ""))
    flag = "--" + name.replace("_", "-")
    where = f"flag {flag}, env {prefix}{name.upper()}, or [{cls.config_section}] {name}"
    got = err.get("input")
    shown = "" if isinstance(got, dict) or f"got {got!r}" in msg else f" (got {got!r})"
    return f"invalid setting '{'.'.join(loc)}' ({where}): {msg}{shown}"


def load_settings(
    cls: type[S],
    overrides: Mapping[str, Any] | None = None,
    config_file: Path | None = None,
) -> S:
    """Build `cls` from flags (`overrides`, None values dropped), env and the config file.

    The config file is `config_file` (the `--config` flag), else the one `$LANES_CONFIG`
    names (either must exist), else the per-user default (which may be absent).
    """
    named = config_file if config_file is not None else named_config_path()
    if named is not None and not named.is_file():
        raise SettingsError(f"config file {named} does not exist")
    token = _config_file.set(named if named is not None else default_config_path())
    try:
        values = {k: v for k, v in (overrides or {}).items() if v is not None}
        return cls(**values)
    except ValidationError as exc:
        raise SettingsError(_describe(cls, exc)) from None
    finally:
        _config_file.reset(token)
