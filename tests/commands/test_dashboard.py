"""`lanes dashboard`: the dashboard's URL from the settings, printed or opened."""

from __future__ import annotations

import webbrowser
from pathlib import Path

import pytest

from proxy.__main__ import main
from proxy.status import ExitStatus


@pytest.fixture(autouse=True)
def _no_env_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The config file written by each test is the only source of settings."""
    for name in ("LANES_LISTEN", "LANES_AUTH_TOKEN", "LANES_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lanes.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


class TestDashboardCommand:
    def test_prints_the_url_from_the_listen_setting(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The URL is the [serve] listen address's, at /dashboard."""
        path = config(tmp_path, '[serve]\nlisten = "127.0.0.1:11500"\n')
        status = main(["dashboard", "--config", str(path)])
        assert (status, capsys.readouterr().out) == (
            ExitStatus.SUCCESS,
            "http://127.0.0.1:11500/dashboard\n",
        )

    def test_url_flag_wins(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """--url names the proxy; its trailing slash is not doubled."""
        path = config(tmp_path, '[serve]\nlisten = "127.0.0.1:11500"\n')
        main(["dashboard", "--config", str(path), "--url", "http://lanes.local:9000/"])
        assert capsys.readouterr().out == "http://lanes.local:9000/dashboard\n"

    def test_open_hands_the_url_to_the_browser(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--open prints the URL and opens it with the standard library's webbrowser."""
        opened: list[str] = []

        def record(url: str) -> bool:
            opened.append(url)
            return True

        monkeypatch.setattr(webbrowser, "open", record)
        path = config(tmp_path, '[serve]\nlisten = "127.0.0.1:11600"\n')
        assert main(["dashboard", "--config", str(path), "--open"]) == ExitStatus.SUCCESS
        assert opened == ["http://127.0.0.1:11600/dashboard"]

    def test_open_without_a_browser_says_so(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """When no browser can be opened, the exit status is 1 and stderr says what to do."""
        monkeypatch.setattr(webbrowser, "open", lambda url: False)
        path = config(tmp_path, '[serve]\nlisten = "127.0.0.1:11600"\n')
        status = main(["dashboard", "--config", str(path), "--open"])
        assert (
            status,
            "open http://127.0.0.1:11600/dashboard yourself" in capsys.readouterr().err,
        ) == (
            ExitStatus.ERROR,
            True,
        )

    def test_a_token_is_mentioned_never_printed(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With auth_token set (here for a proxy on every address, reached on 127.0.0.1),
        stderr says the page asks for it; the token itself never shows."""
        text = '[serve]\nlisten = "0.0.0.0:11500"\nauth_token = "hush-123"\n'
        main(["dashboard", "--config", str(config(tmp_path, text))])
        out, err = capsys.readouterr()
        assert (out, "auth_token" in err, "hush-123" in out + err) == (
            "http://127.0.0.1:11500/dashboard\n",
            True,
            False,
        )
