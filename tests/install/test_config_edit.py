"""The proxy's config file: install sets values reversibly, uninstall restores the original."""

from __future__ import annotations

import tomllib

import pytest

from proxy.install.config_edit import MANAGED_MARK, install_config, restore_config

VALUES: dict[str, str | int] = {
    "lanes": 4,
    "listen": "127.0.0.1:11435",
    "upstream": "http://127.0.0.1:11434",
}


class TestInstallConfig:
    def test_empty_file_gets_a_serve_table(self) -> None:
        """A missing file becomes a [serve] table with the three values."""
        text = install_config("", VALUES)
        assert tomllib.loads(text)["serve"] == VALUES
        assert restore_config(text) == ""

    def test_keeps_comments_and_other_settings(self) -> None:
        """Other tables, comments and keys survive; a replaced key comes back on restore."""
        original = (
            "# my settings\n[simulate]\nlanes = 9\n\n[serve]\nlanes = 2  # mine\nmax_queue = 10\n"
        )
        text = install_config(original, VALUES)
        doc = tomllib.loads(text)
        assert doc["simulate"]["lanes"] == 9
        assert doc["serve"] == VALUES | {"max_queue": 10}
        assert original == restore_config(text)

    def test_file_without_serve_table(self) -> None:
        """A [serve] table added to a file with other tables is removed again on restore."""
        original = "# comment\n[simulate]\nlanes = 9\n"
        text = install_config(original, VALUES)
        assert tomllib.loads(text)["serve"] == VALUES
        assert restore_config(text) == original

    def test_twice_is_the_same_as_once(self) -> None:
        """Installing again replaces the managed lines instead of stacking them."""
        once = install_config("[serve]\nlanes = 2\n", VALUES)
        twice = install_config(once, VALUES | {"lanes": 6})
        assert tomllib.loads(twice)["serve"]["lanes"] == 6
        assert twice.count(MANAGED_MARK) == once.count(MANAGED_MARK)
        assert restore_config(twice) == "[serve]\nlanes = 2\n"

    def test_refuses_an_edit_that_would_not_read_back(self) -> None:
        """A dotted key elsewhere that clashes with [serve] is not silently broken."""
        with pytest.raises(ValueError, match="config file"):
            install_config("serve.lanes = 3\n[serve]\nmax_queue = 1\n", VALUES)
