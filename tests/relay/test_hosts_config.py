"""Multi-host configuration, merged views and option pinning (pure parts)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from proxy.commands import serve
from proxy.config import SettingsError, load_settings
from proxy.relay.app import LEDGER, apply_settings, create_app
from proxy.relay.merge import merge
from proxy.relay.pinning import encode_document, pin_document
from proxy.settings import ProxySettings
from proxy.upstream_specs import PinSpec, UpstreamSpec, model_key

CONFIG = """
[serve]
affinity_wait_s = 8

[[serve.upstreams]]
name = "mac"
url = "http://127.0.0.1:11434/"
lanes = 4
model_lanes = { "all-minilm" = 1 }

[[serve.upstreams]]
name = "linux"
url = "http://10.0.0.7:11434"
lanes = "auto"
weight = 2.0
max_loaded_models = 1
auth_header = "Bearer s3cret"

[serve.pin."llama3.2"]
num_ctx = 8192
keep_alive = "1h"
"""


class TestSettings:
    def test_one_upstream_is_the_simple_case(self) -> None:
        """Without `upstreams`, --upstream and --lanes make one host called `default`."""
        settings = ProxySettings(upstream="http://127.0.0.1:9/", lanes=3)
        (spec,) = settings.upstream_specs()
        assert (spec.name, spec.url, spec.lanes) == ("default", "http://127.0.0.1:9", 3)

    def test_toml_tables(self, tmp_path: Path) -> None:
        """`[[serve.upstreams]]` tables and `[serve.pin]` load from the config file."""
        path = tmp_path / "config.toml"
        path.write_text(CONFIG, encoding="utf-8")
        settings = load_settings(ProxySettings, config_file=path)
        mac, linux = settings.upstream_specs()
        assert (mac.url, mac.model_lanes) == ("http://127.0.0.1:11434", {"all-minilm:latest": 1})
        assert (linux.lanes, linux.weight, linux.max_loaded_models) == ("auto", 2.0, 1)
        assert linux.auth_header is not None
        assert linux.auth_header.get_secret_value() == "Bearer s3cret"
        assert "s3cret" not in repr(settings)
        assert settings.pin == {"llama3.2:latest": PinSpec(num_ctx=8192, keep_alive="1h")}
        assert settings.affinity_wait_s == 8

    def test_env_json(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """LANES_UPSTREAMS and LANES_PIN take JSON from the environment."""
        hosts = [{"name": "a", "url": "http://127.0.0.1:1"}, {"name": "b", "url": "http://h:2"}]
        monkeypatch.setenv("LANES_UPSTREAMS", json.dumps(hosts))
        monkeypatch.setenv("LANES_PIN", json.dumps({"qwen2.5:7b": {"num_ctx": 4096}}))
        empty = tmp_path / "empty.toml"
        empty.write_text("", encoding="utf-8")
        settings = load_settings(ProxySettings, config_file=empty)
        assert [s.name for s in settings.upstream_specs()] == ["a", "b"]
        assert settings.pin["qwen2.5:7b"].num_ctx == 4096

    def test_names_are_unique(self) -> None:
        """Two upstreams with one name are an invalid setting."""
        same = [{"name": "a", "url": "http://x:1"}, {"name": "a", "url": "http://y:1"}]
        with pytest.raises(SettingsError, match="upstream name used twice: a"):
            load_settings(ProxySettings, {"upstreams": same})

    def test_bad_entries_name_the_field(self) -> None:
        """A bad upstream entry is one error line naming its field."""
        with pytest.raises(SettingsError, match="upstreams"):
            load_settings(ProxySettings, {"upstreams": [{"name": "a", "url": "ftp://x"}]})
        with pytest.raises(SettingsError, match="upstreams"):
            load_settings(
                ProxySettings, {"upstreams": [{"name": "a", "url": "http://x", "lanes": 0}]}
            )

    def test_serve_flags_take_json(self, tmp_path: Path) -> None:
        """`lanes serve --upstreams` and `--pin` take JSON on the command line."""
        parser = argparse.ArgumentParser()
        serve.register(parser.add_subparsers())
        args = parser.parse_args(
            [
                "serve",
                "--upstreams",
                '[{"name": "a", "url": "http://127.0.0.1:1", "lanes": 2}]',
                "--pin",
                '{"llama3.2": {"num_ctx": 2048}}',
                "--affinity-wait-s",
                "3",
            ]
        )
        overrides = {name: getattr(args, name, None) for name in ProxySettings.model_fields}
        empty = tmp_path / "empty.toml"
        empty.write_text("", encoding="utf-8")
        settings = load_settings(ProxySettings, overrides, config_file=empty)
        assert settings.upstream_specs()[0].lanes == 2
        assert settings.pin["llama3.2:latest"].num_ctx == 2048
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", "--upstreams", "not json"])


class TestAutoLanes:
    def test_lanes_default_to_auto_with_the_hosts_settings(self) -> None:
        """lanes is "auto" unless set; num_parallel and model_lanes reach the default host."""
        spec = UpstreamSpec(name="b", url="http://10.1.1.1:11434")
        assert (spec.lanes, spec.num_parallel) == ("auto", None)
        settings = ProxySettings(num_parallel=4, model_lanes={"all-minilm": 1})
        (default,) = settings.upstream_specs()
        assert (default.lanes, default.num_parallel, default.model_lanes) == (
            "auto",
            4,
            {"all-minilm:latest": 1},
        )
        assert UpstreamSpec(name="c", url="http://h:1", lanes=6).lanes == 6

    def test_tune_knee_reaches_the_default_host_and_applies_on_reload(self) -> None:
        """tune_knee is the default host's knee; a reload (SIGHUP) applies it without a restart."""
        app = create_app(ProxySettings())
        fresh = ProxySettings(tune_knee=4)
        assert fresh.upstream_specs()[0].knee == 4
        assert apply_settings(app, fresh) == []
        assert app[LEDGER].knees == {"default": 4}

    def test_model_key(self) -> None:
        """Model names get Ollama's `:latest` tag when they have none."""
        assert [model_key(n) for n in ("llama3.2", "a/b:7b", "x/y", " ")] == [
            "llama3.2:latest",
            "a/b:7b",
            "x/y:latest",
            "",
        ]


class TestMerge:
    def test_tags_union_first_host_wins(self) -> None:
        """Merged /api/tags is the union by name; the first host's entry wins."""
        one = {"models": [{"name": "a:latest", "size": 1}, {"name": "b:latest", "size": 2}]}
        two = {"models": [{"name": "b:latest", "size": 9}, {"name": "c:latest"}, "junk"]}
        merged = merge("/api/tags", [one, two, {"oops": 1}])
        assert [(m["name"], m.get("size")) for m in merged["models"]] == [
            ("a:latest", 1),
            ("b:latest", 2),
            ("c:latest", None),
        ]

    def test_ps_sorted_by_expiry_newest_first(self) -> None:
        """Merged /api/ps keeps Ollama's order: newest expires_at first."""
        one = {"models": [{"name": "a", "expires_at": "2026-01-01T00:00:00Z"}]}
        two = {"models": [{"name": "b", "expires_at": "2026-02-01T00:00:00Z"}]}
        assert [m["name"] for m in merge("/api/ps", [one, two])["models"]] == ["b", "a"]

    def test_v1_models_keep_the_openai_shape(self) -> None:
        """Merged /v1/models keeps OpenAI's list envelope."""
        docs = [{"object": "list", "data": [{"id": "a"}]}, {"data": [{"id": "a"}, {"id": "b"}]}]
        assert merge("/v1/models", docs) == {"object": "list", "data": [{"id": "a"}, {"id": "b"}]}


class TestPinDocument:
    def test_sets_num_ctx_and_keep_alive(self) -> None:
        """A pin sets options.num_ctx and keep_alive, keeping the other options."""
        doc = json.loads(b'{"model":"m","prompt":"hi","options":{"num_ctx":2048,"temperature":0}}')
        assert pin_document("/api/generate", doc, PinSpec(num_ctx=8192, keep_alive="1h"))
        again = json.loads(encode_document(doc))
        assert again["options"] == {"num_ctx": 8192, "temperature": 0}
        assert again["keep_alive"] == "1h"

    def test_adds_options_when_missing_and_leaves_matching_bodies_alone(self) -> None:
        """A pin adds options when there are none; a body already pinned is left as it is."""
        pin = PinSpec(num_ctx=4096)
        doc: dict[str, object] = {"model": "m", "messages": []}
        assert pin_document("/api/chat", doc, pin)
        assert doc["options"] == {"num_ctx": 4096}
        assert not pin_document("/api/chat", {"model": "m", "options": {"num_ctx": 4096}}, pin)

    def test_v1_bodies_are_not_touched(self) -> None:
        """/v1 bodies carry no options, so pins never touch them."""
        doc = {"model": "m", "messages": []}
        assert not pin_document("/v1/chat/completions", doc, PinSpec(num_ctx=4096))
        assert doc == {"model": "m", "messages": []}
