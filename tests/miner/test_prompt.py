"""The request body: static prefix first, segment last, options pinned."""

from __future__ import annotations

import json

from miner.prompt import build_body, fit_warnings, prompt_text, prompt_version, static_prompt
from miner.schema import FORMAT_SCHEMA
from miner.segments import Segment

SEG = Segment("src", "seg_0001_abc", 1, "Ana", "00:10", "00:20", "Canary releases are safer.")
OPTS = {"model": "m:7b", "num_ctx": 8192, "num_predict": 2048, "keep_alive": "1h"}


class TestPromptText:
    def test_static_prefix_then_segment_last(self) -> None:
        """The prompt starts with the static part and ends with the segment JSON."""
        text = prompt_text(SEG)
        assert text.startswith(static_prompt())
        tail = json.loads(text[len(static_prompt()) :])
        assert tail == {
            "segment_id": "seg_0001_abc",
            "speaker": "Ana",
            "timestamp_start": "00:10",
            "timestamp_end": "00:20",
            "text": "Canary releases are safer.",
        }

    def test_schema_and_example_in_static_part(self) -> None:
        """The static part holds the schema and one worked example, no template markers."""
        static = static_prompt()
        assert json.dumps(FORMAT_SCHEMA, separators=(",", ":")) in static
        assert "{{" not in static
        assert "Conway's law" in static

    def test_version_names_template_and_hash(self) -> None:
        """The version is stable and carries a hash of the static prompt."""
        assert prompt_version() == prompt_version()
        assert prompt_version().startswith("extract.v1+")
        assert len(prompt_version().split("+")[1]) == 8


class TestBuildBody:
    def test_native_first_call(self) -> None:
        """Native: schema as format, temperature 0, num_ctx, num_predict, keep_alive."""
        body = build_body(SEG, api="ollama", **OPTS)  # type: ignore[arg-type]
        assert body["format"] == FORMAT_SCHEMA
        assert body["options"] == {"temperature": 0.0, "num_ctx": 8192, "num_predict": 2048}
        assert (body["keep_alive"], body["stream"], body["model"]) == ("1h", False, "m:7b")
        assert [{"role": "user", "content": prompt_text(SEG)}] == body["messages"]

    def test_native_fallback_drops_format_keeps_ctx(self) -> None:
        """Fallback: no format, temperature 0.3, same num_ctx (no reload)."""
        body = build_body(SEG, api="ollama", fallback=True, **OPTS)  # type: ignore[arg-type]
        assert "format" not in body
        assert (body["options"]["temperature"], body["options"]["num_ctx"]) == (0.3, 8192)

    def test_openai_response_format(self) -> None:
        """/v1: response_format carries the json_schema; max_tokens caps output."""
        body = build_body(SEG, api="openai", **OPTS)  # type: ignore[arg-type]
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == FORMAT_SCHEMA
        assert (body["temperature"], body["max_tokens"]) == (0.0, 2048)
        fallback = build_body(SEG, api="openai", fallback=True, **OPTS)  # type: ignore[arg-type]
        assert "response_format" not in fallback


class TestFitWarnings:
    def test_fits(self) -> None:
        """No warning when prompt, segment and output cap fit."""
        assert fit_warnings(SEG, num_ctx=8192, num_predict=2048) == []

    def test_prompt_longer_than_ctx(self) -> None:
        """A warning naming the segment when the prompt alone exceeds num_ctx."""
        big = Segment("src", "seg_big", 0, "A", "", "", "word " * 8000)
        (warning,) = fit_warnings(big, num_ctx=8192, num_predict=2048)
        assert "seg_big" in warning
        assert "truncate" in warning

    def test_output_cap_does_not_fit(self) -> None:
        """A softer warning when prompt plus num_predict exceed num_ctx."""
        (warning,) = fit_warnings(SEG, num_ctx=1500, num_predict=1024)
        assert "num_predict 1024" in warning
