"""Segmentation: speaker turns, sentence ends, token budget and stable ids."""

from __future__ import annotations

from miner.segments import Budget, Turn, estimate_tokens, segment_id, segment_turns, split_sentences


def _sentence(n: int, words: int = 20) -> str:
    return " ".join(f"w{n}x{i}" for i in range(words)) + "."


class TestSplitSentences:
    def test_splits_at_sentence_ends(self) -> None:
        """Periods, question and exclamation marks followed by space end a sentence."""
        assert split_sentences("One. Two?  Three! Four") == ["One.", "Two?", "Three!", "Four"]

    def test_keeps_all_words(self) -> None:
        """Nothing but whitespace is lost."""
        text = "A b. C d? E f! G h"
        assert text.split() == " ".join(split_sentences(text)).split()


class TestSegmentTurns:
    def test_speaker_change_always_splits(self) -> None:
        """Two short turns by different speakers become two segments."""
        turns = [Turn("A", "00:00", "00:05", "Hi there."), Turn("B", "00:05", "00:09", "Hello.")]
        segs = segment_turns("src", turns, Budget(300, 1000))
        assert [(s.speaker, s.t0, s.t1) for s in segs] == [
            ("A", "00:00", "00:05"),
            ("B", "00:05", "00:09"),
        ]

    def test_same_speaker_turns_merge_until_min_budget(self) -> None:
        """Consecutive turns of one speaker merge; t0 from the first, t1 from the last."""
        turns = [Turn("A", f"{i}", f"{i + 1}", _sentence(i, 5)) for i in range(3)]
        segs = segment_turns("src", turns, Budget(300, 1000))
        assert len(segs) == 1
        assert (segs[0].t0, segs[0].t1) == ("0", "3")

    def test_closes_at_sentence_end_once_min_reached(self) -> None:
        """A long monologue is cut at sentence ends into segments of at least min tokens."""
        text = " ".join(_sentence(i) for i in range(40))  # ~40 x 30 tokens
        segs = segment_turns("src", [Turn("A", "", "", text)], Budget(100, 300))
        assert len(segs) > 3
        assert all(s.tokens >= 100 for s in segs[:-1])
        assert all(s.text.endswith(".") for s in segs)
        assert text.split() == " ".join(s.text for s in segs).split()

    def test_never_exceeds_max_tokens(self) -> None:
        """No segment passes max tokens, even for one giant sentence."""
        text = " ".join(f"word{i}" for i in range(2000))
        segs = segment_turns("src", [Turn("A", "", "", text)], Budget(50, 100))
        assert all(s.tokens <= 100 for s in segs)
        assert text.split() == " ".join(s.text for s in segs).split()

    def test_no_merge_keeps_records_apart(self) -> None:
        """With merge_turns False, each turn starts its own segment."""
        turns = [Turn("A", "1", "2", "One."), Turn("A", "2", "3", "Two.")]
        assert len(segment_turns("src", turns, Budget(), merge_turns=False)) == 2

    def test_ids_are_stable_and_distinct(self) -> None:
        """The same input gives the same ids; index, source and content all matter."""
        turns = [Turn("A", "0", "1", "Same words."), Turn("B", "1", "2", "Same words.")]
        first = [s.segment_id for s in segment_turns("src", turns, Budget())]
        again = [s.segment_id for s in segment_turns("src", turns, Budget())]
        other = [s.segment_id for s in segment_turns("other", turns, Budget())]
        assert first == again
        assert len(set(first)) == 2
        assert not set(first) & set(other)
        assert first[0].startswith("seg_0000_")


class TestTokens:
    def test_characters_over_four(self) -> None:
        """Tokens are estimated as characters / 4, rounded up."""
        assert tuple(estimate_tokens("x" * n) for n in (0, 1, 4, 5)) == (0, 1, 1, 2)

    def test_segment_id_changes_with_content(self) -> None:
        """A changed text gives a new id."""
        assert segment_id("s", 0, "a") != segment_id("s", 0, "b")
