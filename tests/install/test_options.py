"""What `lanes install` accepts: Ollama keep-alive durations, lane counts and queue bounds."""

from __future__ import annotations

import pytest

from proxy.install.options import keep_alive_duration, lane_count, queue_bound


class TestKeepAliveDuration:
    @pytest.mark.parametrize("good", ["5m", "1h30m", "-1m", "300", "-1", "0", "1.5h"])
    def test_accepts_ollama_durations(self, good: str) -> None:
        """Go durations and whole seconds pass unchanged."""
        assert good == keep_alive_duration(good)

    @pytest.mark.parametrize("bad", ["5 minutes", "m", "10d", "", "1h-"])
    def test_rejects_others(self, bad: str) -> None:
        """Anything Ollama would refuse is refused before installing."""
        with pytest.raises(ValueError, match="is not a duration"):
            keep_alive_duration(bad)


class TestLaneCount:
    @pytest.mark.parametrize(("text", "lanes"), [("1", 1), ("4", 4), ("256", 256)])
    def test_accepts_one_to_256(self, text: str, lanes: int) -> None:
        """Whole numbers from 1 to 256 are lane counts."""
        assert lanes == lane_count(text)

    @pytest.mark.parametrize("bad", ["0", "257", "-1", "two", "1.5"])
    def test_rejects_the_rest(self, bad: str) -> None:
        """Anything else is refused with the range in the message."""
        with pytest.raises(ValueError, match="from 1 to 256"):
            lane_count(bad)


class TestQueueBound:
    def test_accepts_a_positive_whole_number(self) -> None:
        """OLLAMA_MAX_QUEUE takes 1 and up."""
        assert queue_bound("512") == 512

    @pytest.mark.parametrize("bad", ["0", "-3", "x", ""])
    def test_rejects_zero_and_words(self, bad: str) -> None:
        """Zero, negatives and words are refused."""
        with pytest.raises(ValueError, match="above 0"):
            queue_bound(bad)
