"""Input formats, including malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from miner.formats import InputError, discover, parse_text, read_source

DATA = Path(__file__).resolve().parents[1] / "data"


class TestTranscriptMarkdown:
    def test_turns_with_timestamps_as_given(self) -> None:
        """`[MM:SS] (Speaker): text`: t1 is the next turn's start; the last keeps its own."""
        parsed = read_source(DATA / "corpus" / "interview.md")
        assert parsed.format == "transcript"
        first, last = parsed.turns[0], parsed.turns[-1]
        assert (first.speaker, first.t0, first.t1) == ("Host", "00:00", "00:09")
        assert (last.speaker, last.t0, last.t1) == ("Dana", "00:48", "00:48")
        assert len(parsed.turns) == 6

    def test_multiline_turn_and_hour_stamps(self) -> None:
        """A turn may span lines; HH:MM:SS stamps are accepted."""
        parsed = parse_text(".md", "[01:02:03] (A): one\ntwo\n[01:02:09] (B): three")
        assert [(t.speaker, t.text) for t in parsed.turns] == [("A", "one two"), ("B", "three")]


class TestPlainText:
    def test_paragraphs_without_rules_or_heading_marks(self) -> None:
        """Plain text: `---` rules dropped, `#` stripped, speaker Unknown, no timestamps."""
        parsed = read_source(DATA / "corpus" / "notes.txt")
        assert parsed.format == "text"
        assert parsed.turns[0].text == "Reading notes on capacity planning"
        assert all(t.speaker == "Unknown" and t.t0 == "" for t in parsed.turns)
        assert not any("---" in t.text for t in parsed.turns)


class TestSubtitles:
    def test_srt_labels_carry_forward(self) -> None:
        """SRT: `Name:` sets the speaker until the next label; timings kept verbatim."""
        turns = read_source(DATA / "corpus" / "talk.srt").turns
        assert [t.speaker for t in turns] == [
            "Speaker One",
            "Speaker One",
            "Speaker Two",
            "Speaker One",
        ]
        assert (turns[1].t0, turns[1].t1) == ("00:00:05,000", "00:00:11,000")
        assert turns[0].text.startswith("Today")

    def test_vtt_voice_tags(self) -> None:
        """VTT: `<v Name>` gives the speaker and is stripped; NOTE blocks are skipped."""
        turns = read_source(DATA / "corpus" / "panel.vtt").turns
        assert [t.speaker for t in turns] == ["Rosa", "Omar", "Rosa"]
        assert not any("<" in t.text for t in turns)
        text = "WEBVTT\n\nNOTE hi\n\nid1\n00:01.000 --> 00:02.000 align:start\n<i>Hey</i> you.\n"
        assert [(t.t0, t.text) for t in parse_text(".vtt", text).turns] == [
            ("00:01.000", "Hey you.")
        ]


class TestJson:
    def test_json_list_with_numeric_stamps(self) -> None:
        """JSON list: fields read, numbers turned into strings, records kept apart."""
        parsed = read_source(DATA / "corpus" / "segments.json")
        assert not parsed.merge_turns
        assert [(t.speaker, t.t0, t.t1) for t in parsed.turns] == [
            ("Lee", "0.0", "12.5"),
            ("Kim", "12.5", "30.0"),
            ("Lee", "30", "41.5"),
        ]

    def test_jsonl_skips_blank_lines(self) -> None:
        """JSONL: one object per line, blank lines ignored."""
        assert len(read_source(DATA / "corpus" / "segments.jsonl").turns) == 2

    def test_segments_key_accepted(self) -> None:
        """A `{"segments": [...]}` object is accepted too."""
        assert len(parse_text(".json", '{"segments": [{"text": "x"}]}').turns) == 1


class TestMalformed:
    @pytest.mark.parametrize(
        ("name", "reason"),
        [
            ("empty.txt", "empty file"),
            ("blank.md", "empty file"),
            ("broken.json", "invalid JSON at line 1"),
            ("broken.jsonl", "invalid JSON on line 2"),
            ("broken.srt", "cue 2: no 'start --> end' timing line"),
            ("noheader.vtt", "missing WEBVTT header"),
            ("notalist.json", "expected a JSON list"),
            ("latin1.txt", "not UTF-8 text"),
        ],
    )
    def test_clear_error_naming_file(self, name: str, reason: str) -> None:
        """Each malformed file raises InputError naming the file and the reason."""
        with pytest.raises(InputError) as info:
            read_source(DATA / "malformed" / name)
        assert str(info.value).startswith(str(DATA / "malformed" / name))
        assert reason in str(info.value)

    @pytest.mark.parametrize(
        ("suffix", "text", "reason"),
        [
            (".json", '[{"speaker": "A"}]', "segment 1: missing or non-string 'text'"),
            (".json", "[1]", "segment 1: expected an object"),
            (".json", '[{"text": "x", "t0": [1]}]', "timestamp must be"),
            (".srt", "x\n00:00:01,000 --> 00:00:02,000\nhi\n", "expected a cue number"),
            (".pdf", "x", "unsupported file type"),
        ],
    )
    def test_bad_records(self, suffix: str, text: str, reason: str) -> None:
        """Bad records and unknown types are reported with their position."""
        with pytest.raises(InputError, match=reason):
            parse_text(suffix, text)

    def test_missing_file(self, tmp_path: Path) -> None:
        """An unreadable file is an InputError, not a crash."""
        with pytest.raises(InputError, match="cannot read"):
            read_source(tmp_path / "gone.txt")


class TestDiscover:
    def test_folders_expand_and_missing_paths_are_errors(self, tmp_path: Path) -> None:
        """Folders give their known files, sorted; a missing path is an error, not a stop."""
        files, errors = discover([DATA / "corpus", tmp_path / "nope.md"])
        assert len(files) == 6
        assert files == sorted(files)
        assert [f"{tmp_path / 'nope.md'}: no such file or folder"] == errors
