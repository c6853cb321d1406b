"""proxy.config: where the config file is, how it loads, how a bad setting reads, and where
the commands find the local proxy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from miner.settings import MinerSettings
from proxy.config import (
    CONFIG_ENV,
    SettingsError,
    config_path,
    default_config_path,
    load_settings,
    named_config_path,
)
from proxy.settings import ProxySettings, proxy_endpoint


@pytest.fixture(autouse=True)
def _no_lanes_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LANES_* or MINER_* variable of the test run leaks into the settings."""
    for name in [n for n in os.environ if n.startswith(("LANES_", "MINER_"))]:
        monkeypatch.delenv(name)


class TestConfigPath:
    def test_the_variable_names_the_file(self) -> None:
        """$LANES_CONFIG, when set, is the config file."""
        assert Path("/etc/lanes.toml") == config_path({CONFIG_ENV: "/etc/lanes.toml"})

    def test_unset_or_empty_means_the_per_user_default(self) -> None:
        """Without $LANES_CONFIG (or with it empty) the per-user file is the config file."""
        assert default_config_path() == config_path({})
        assert default_config_path() == config_path({CONFIG_ENV: ""})

    def test_named_only_when_set(self) -> None:
        """named_config_path says whether the environment chose a file at all."""
        assert named_config_path({}) is None
        assert Path("x.toml") == named_config_path({CONFIG_ENV: "x.toml"})

    def test_reads_the_process_environment_by_default(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Called without a mapping, the lookup reads os.environ."""
        monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "c.toml"))
        assert tmp_path / "c.toml" == config_path()


class TestLoadSettings:
    def test_the_file_the_variable_names_is_read(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """Without --config, the [serve] table of $LANES_CONFIG's file is read."""
        config = tmp_path / "c.toml"
        config.write_text("[serve]\nlanes = 7\n", encoding="utf-8")
        monkeypatch.setenv(CONFIG_ENV, str(config))
        assert load_settings(ProxySettings).lanes == 7

    def test_the_flag_beats_the_variable(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """--config wins over $LANES_CONFIG."""
        (tmp_path / "env.toml").write_text("[serve]\nlanes = 7\n", encoding="utf-8")
        (tmp_path / "flag.toml").write_text("[serve]\nlanes = 5\n", encoding="utf-8")
        monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "env.toml"))
        assert load_settings(ProxySettings, config_file=tmp_path / "flag.toml").lanes == 5

    def test_a_named_file_must_exist(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A file named by $LANES_CONFIG that is not there is a settings error."""
        monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "missing.toml"))
        with pytest.raises(SettingsError, match=r"missing\.toml does not exist"):
            load_settings(ProxySettings)

    def test_the_miner_reads_its_own_table(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The miner loads through the same loader, from the [miner] table of the same file."""
        config = tmp_path / "c.toml"
        config.write_text("[serve]\nlanes = 7\n[miner]\nworkers = 3\n", encoding="utf-8")
        monkeypatch.setenv(CONFIG_ENV, str(config))
        assert load_settings(MinerSettings).workers == 3

    def test_undecodable_file_is_a_settings_error(self, tmp_path: Path) -> None:
        """A config file that is not UTF-8 is named in a settings error."""
        config = tmp_path / "c.toml"
        config.write_bytes(b"[serve]\nlanes = \xff\n")
        with pytest.raises(SettingsError, match="config file"):
            load_settings(ProxySettings, config_file=config)


class TestErrorLine:
    def test_a_message_that_shows_the_value_is_not_repeated(self, tmp_path: Path) -> None:
        """A validator's own `got 'nope'` is not followed by pydantic's prefix or a second copy."""
        empty = tmp_path / "c.toml"
        empty.write_text("", encoding="utf-8")
        with pytest.raises(SettingsError) as caught:
            load_settings(ProxySettings, {"listen": "nope"}, config_file=empty)
        assert str(caught.value) == (
            "invalid setting 'listen' (flag --listen, env LANES_LISTEN, or [serve] listen): "
            "expected HOST:PORT, got 'nope'"
        )

    def test_other_messages_show_the_value(self, tmp_path: Path) -> None:
        """A message that does not show the value gets it appended."""
        empty = tmp_path / "c.toml"
        empty.write_text("", encoding="utf-8")
        with pytest.raises(SettingsError) as caught:
            load_settings(ProxySettings, {"lanes": 0}, config_file=empty)
        assert str(caught.value) == (
            "invalid setting 'lanes' (flag --lanes, env LANES_LANES, or [serve] lanes): "
            "Input should be greater than or equal to 1 (got 0)"
        )

    def test_the_miner_names_its_prefix_and_table(self, tmp_path: Path) -> None:
        """A miner setting is named with MINER_ and [miner], pydantic's prefix stripped."""
        empty = tmp_path / "c.toml"
        empty.write_text("", encoding="utf-8")
        with pytest.raises(SettingsError) as caught:
            load_settings(MinerSettings, {"url": "ftp://x"}, config_file=empty)
        assert str(caught.value) == (
            "invalid setting 'url' (flag --url, env MINER_URL, or [miner] url): "
            "must start with http:// or https:// (got 'ftp://x')"
        )


class TestProxyEndpoint:
    def test_the_listen_address_of_the_config_file(self, tmp_path: Path) -> None:
        """Without a URL, the proxy is reached at [serve] listen (a wildcard bind via loopback)."""
        config = tmp_path / "c.toml"
        config.write_text('[serve]\nlisten = "0.0.0.0:9999"\nauth_token = "t"\n', encoding="utf-8")
        assert proxy_endpoint(None, config) == ("http://127.0.0.1:9999", "t")

    def test_a_url_wins_and_the_token_comes_from_the_settings(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A given URL is used as is, with the token the settings hold."""
        empty = tmp_path / "c.toml"
        empty.write_text("", encoding="utf-8")
        monkeypatch.setenv("LANES_AUTH_TOKEN", "s3cret")
        assert proxy_endpoint("http://h:1", empty) == ("http://h:1", "s3cret")

    def test_broken_settings_with_a_url(self, tmp_path: Path) -> None:
        """Settings that do not load do not matter when the URL is given (no token, then)."""
        broken = tmp_path / "c.toml"
        broken.write_text("[serve]\nlanes = 0\n", encoding="utf-8")
        assert proxy_endpoint("http://h:1", broken) == ("http://h:1", None)

    def test_broken_settings_without_a_url(self, tmp_path: Path) -> None:
        """Without a URL, settings that do not load are the error."""
        broken = tmp_path / "c.toml"
        broken.write_text("[serve]\nlanes = 0\n", encoding="utf-8")
        with pytest.raises(SettingsError, match="'lanes'"):
            proxy_endpoint(None, broken)
