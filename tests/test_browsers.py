"""Ollama's browser rules (pure): which Host names and Origins pass, and the CORS headers."""

from __future__ import annotations

import pytest

from proxy.browsers import (
    OriginRule,
    cors_headers,
    default_origins,
    host_allowed,
    is_cross_origin,
    origins_from,
    preflight_headers,
    split_origins,
)


def _allowed(host: str) -> bool:
    return host_allowed(host, hostname="mybox", local_addresses=lambda: {"203.0.113.7"})


class TestHost:
    @pytest.mark.parametrize(
        "host",
        [
            "",
            "localhost",
            "localhost:11435",
            "LOCALHOST:1",
            "mybox",
            "MyBox:11435",
            "app.localhost",
            "printer.local:80",
            "svc.internal",
            "127.0.0.1:11435",
            "127.8.9.10",
            "[::1]:11435",
            "[::1]",
            "::1",
            "0.0.0.0",
            "[::]",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.20:8080",
            "[fd00::2]",
            "[::ffff:127.0.0.1]",
            "203.0.113.7",
        ],
    )
    def test_local_hosts_pass(self, host: str) -> None:
        """Local names, loopback/private/unspecified IPs and this machine's own pass."""
        assert _allowed(host)

    @pytest.mark.parametrize(
        "host",
        [
            "evil.example",
            "evil.example:11435",
            "localhost.evil.example",
            "8.8.8.8",
            "169.254.169.254",
            "[fe80::1]",
            "100.64.0.1",
            "203.0.113.8",
            "local",
            "mybox.evil.example",
        ],
    )
    def test_other_hosts_are_refused(self, host: str) -> None:
        """Public names and addresses fail, link-local and documentation ranges too (Go's
        IsPrivate is narrower than Python's is_private)."""
        assert not _allowed(host)

    def test_machine_addresses_are_read_only_for_public_literals(self) -> None:
        """The interface list (a system call) is consulted only for a public IP literal."""
        calls: list[int] = []

        def addresses() -> set[str]:
            calls.append(1)
            return set()

        for host in ("localhost", "10.0.0.1", "evil.example"):
            host_allowed(host, hostname="x", local_addresses=addresses)
        assert calls == []
        host_allowed("8.8.8.8", hostname="x", local_addresses=addresses)
        assert calls == [1]


class TestOrigins:
    def test_ollama_defaults(self) -> None:
        """localhost, 127.0.0.1 and 0.0.0.0 over http(s) on any port, and app schemes."""
        rule = OriginRule.of(default_origins())
        for origin in (
            "http://localhost",
            "https://localhost:3000",
            "http://127.0.0.1:8080",
            "http://0.0.0.0:1",
            "app://obsidian.md",
            "file://",
            "tauri://localhost",
            "vscode-webview://abc",
            "vscode-file://vscode-app",
        ):
            assert rule.allows(origin), origin
        for origin in ("https://evil.example", "http://localhost.evil.example", "null"):
            assert not rule.allows(origin), origin

    def test_env_and_setting_extend_the_defaults(self) -> None:
        """OLLAMA_ORIGINS (comma-separated, quotes trimmed) and allowed_origins add origins."""
        rule = origins_from(
            {"OLLAMA_ORIGINS": ' "https://a.example" , chrome-extension://*'},
            ["https://b.example"],
        )
        assert rule.allows("https://a.example")
        assert rule.allows("chrome-extension://abcdef")
        assert rule.allows("https://b.example")
        assert rule.allows("http://localhost:1234")
        assert not rule.allows("https://c.example")

    def test_a_bare_star_allows_all(self) -> None:
        """OLLAMA_ORIGINS=* (the app's "allow browser") allows every origin, answered with *."""
        rule = origins_from({"OLLAMA_ORIGINS": "*"}, [])
        assert rule.allows("https://anything.example")
        assert cors_headers("https://x.example", rule)["Access-Control-Allow-Origin"] == "*"
        assert "Vary" not in preflight_headers("https://x.example", rule)

    def test_split_origins(self) -> None:
        """Empty parts and surrounding quotes and spaces are dropped."""
        assert split_origins(" 'a' ,, \"b\" ,") == ["a", "b"]

    def test_same_origin_is_no_cors_request(self) -> None:
        """A page asking its own host sends Origin but needs no CORS check, as in gin."""
        assert not is_cross_origin("http://127.0.0.1:11435", "127.0.0.1:11435")
        assert is_cross_origin("http://evil.example", "127.0.0.1:11435")

    def test_cors_and_preflight_headers(self) -> None:
        """An allowed origin is echoed with Vary; a preflight lists methods, headers, max age."""
        rule = OriginRule.of(default_origins())
        assert cors_headers("http://localhost:3000", rule)["Vary"] == "Origin"
        pre = preflight_headers("http://localhost:3000", rule)
        assert pre["Access-Control-Allow-Origin"] == "http://localhost:3000"
        assert "POST" in pre["Access-Control-Allow-Methods"]
        assert "X-Stainless-Os" in pre["Access-Control-Allow-Headers"]
        assert "X-Lanes-Priority" in pre["Access-Control-Allow-Headers"]
        assert pre["Access-Control-Max-Age"] == "43200"
