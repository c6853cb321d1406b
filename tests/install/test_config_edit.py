"""The proxy's config file: install edits reversibly, uninstall restores, tune sets one value."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest

from proxy.install.config_edit import (
    MANAGED_MARK,
    holds_secret,
    install_config,
    masked,
    read_config,
    restore_config,
    set_value,
    write_config,
)

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


class TestSetValue:
    def test_empty_file_gets_the_table(self) -> None:
        """No file yet: a [serve] table with the key."""
        assert tomllib.loads(set_value("", "lanes", 3)) == {"serve": {"lanes": 3}}

    def test_existing_key_is_replaced_in_place(self) -> None:
        """Other keys, tables and comments stay as written."""
        text = '# mine\n[serve]\nlisten = "127.0.0.1:11435"\nlanes = 8\n\n[miner]\nworkers = 4\n'
        new = set_value(text, "lanes", 3)
        assert new == text.replace("lanes = 8", "lanes = 3")

    def test_missing_key_is_added_to_the_table(self) -> None:
        """The key goes at the end of [serve], before the blank line and the next table."""
        new = set_value('[serve]\nlisten = "x"\n\n[miner]\nworkers = 4\n', "lanes", 2)
        assert tomllib.loads(new) == {"serve": {"listen": "x", "lanes": 2}, "miner": {"workers": 4}}

    def test_missing_table_is_appended(self) -> None:
        """Other tables are left alone and [serve] follows them."""
        new = set_value("[miner]\nworkers = 4\n", "lanes", 5)
        assert tomllib.loads(new) == {"miner": {"workers": 4}, "serve": {"lanes": 5}}

    def test_trailing_comment_is_kept(self) -> None:
        """`lanes install` marks its lines with a comment; the mark stays on the new value."""
        new = set_value("[serve]\nlanes = 4  # lanes install\n", "lanes", 3)
        assert new == "[serve]\nlanes = 3  # lanes install\n"

    def test_array_of_tables_ends_the_table(self) -> None:
        """A new key goes into [serve] itself, not into a [[serve.upstreams]] entry after it."""
        text = '[serve]\nlisten = "x"\n\n[[serve.upstreams]]\nname = "a"\nurl = "http://a"\n'
        new = set_value(text, "lanes", 2)
        assert tomllib.loads(new)["serve"]["lanes"] == 2
        assert "lanes" not in tomllib.loads(new)["serve"]["upstreams"][0]

    def test_uninstall_after_tune_restores_the_original(self) -> None:
        """A value tune set on an installed line goes away with `lanes uninstall`."""
        installed = install_config("[serve]\nlanes = 2\n", VALUES)
        tuned = set_value(installed, "lanes", 3)
        assert tomllib.loads(tuned)["serve"]["lanes"] == 3
        assert restore_config(tuned) == "[serve]\nlanes = 2\n"


class TestFile:
    def test_read_absent_file(self, tmp_path: Path) -> None:
        """A config file that does not exist reads as None."""
        assert read_config(tmp_path / "none.toml") is None

    def test_write_creates_the_folder(self, tmp_path: Path) -> None:
        """The folder is created and the text written, with no partial file left behind."""
        path = tmp_path / "a" / "b" / "config.toml"
        write_config(path, "[serve]\nlanes = 2\n")
        assert read_config(path) == "[serve]\nlanes = 2\n"
        assert [p.name for p in path.parent.iterdir()] == ["config.toml"]

    def test_write_keeps_the_permission_bits(self, tmp_path: Path) -> None:
        """Rewriting a private (0600) config file leaves it private."""
        path = tmp_path / "config.toml"
        path.write_text("[serve]\n", encoding="utf-8")
        path.chmod(0o600)
        write_config(path, "[serve]\nlanes = 3\n")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_config(path) == "[serve]\nlanes = 3\n"

    def test_a_file_with_a_token_is_private_from_the_start(self, tmp_path: Path) -> None:
        """A new or world-readable config file that holds a token is written 0600."""
        fresh = tmp_path / "fresh.toml"
        write_config(fresh, '[serve]\nauth_token = "s3cret"\n')
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
        shared = tmp_path / "shared.toml"
        shared.write_text("[serve]\n", encoding="utf-8")
        shared.chmod(0o644)
        write_config(shared, '[[serve.upstreams]]\nauth_header = "Bearer x"\n')
        assert stat.S_IMODE(shared.stat().st_mode) == 0o600

    def test_a_file_without_a_secret_gets_the_usual_mode(self, tmp_path: Path) -> None:
        """A new config file without a secret is created like any file (the umask decides)."""
        path = tmp_path / "plain.toml"
        write_config(path, "[serve]\nlanes = 2\n")
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


class TestSecrets:
    def test_masked_hides_tokens_and_authorization_values(self) -> None:
        """Printed configs show stars for auth_token and every upstream's auth_header."""
        text = '[serve]\nauth_token = "s3cret"\nupstreams = [{name = "a", auth_header = \'B x\'}]\n'
        shown = masked(text)
        assert "s3cret" not in shown
        assert "B x" not in shown
        assert shown.count('"********"') == 2
        assert holds_secret(text)
        assert not holds_secret(shown.replace("auth_", "x_"))
