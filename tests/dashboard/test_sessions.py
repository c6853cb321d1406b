"""SessionKeys: the feed's short-lived signed values (pure: the clock is passed in)."""

from __future__ import annotations

from proxy.dashboard.sessions import SessionKeys


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keys(clock: Clock, key: bytes = b"k" * 32) -> SessionKeys:
    return SessionKeys(ttl_s=60.0, key=key, clock=clock)


class TestSessionKeys:
    def test_a_fresh_value_is_valid(self) -> None:
        """A value just minted opens the feed."""
        clock = Clock()
        sessions = keys(clock)
        assert sessions.valid(sessions.mint()) is True

    def test_a_value_expires_after_its_ttl(self) -> None:
        """60 s after it was minted, a value opens nothing."""
        clock = Clock()
        sessions = keys(clock)
        value = sessions.mint()
        clock.now += 60.0
        assert sessions.valid(value) is False

    def test_a_value_is_valid_until_just_before_it_expires(self) -> None:
        """59.9 s after it was minted, a value still opens the feed."""
        clock = Clock()
        sessions = keys(clock)
        value = sessions.mint()
        clock.now += 59.9
        assert sessions.valid(value) is True

    def test_another_process_key_refuses_the_value(self) -> None:
        """A value signed with another key (another process, or before a restart) is refused."""
        clock = Clock()
        value = keys(clock, b"a" * 32).mint()
        assert keys(clock, b"b" * 32).valid(value) is False

    def test_a_later_expiry_with_the_old_signature_is_refused(self) -> None:
        """Moving the expiry forward breaks the signature."""
        clock = Clock()
        sessions = keys(clock)
        mac = sessions.mint().rpartition(".")[2]
        assert sessions.valid(f"{clock.now + 3600:.3f}.{mac}") is False

    def test_an_expiry_beyond_the_ttl_is_refused_even_if_signed(self) -> None:
        """A value minted by a clock far ahead (a forged far expiry) opens nothing."""
        clock = Clock()
        sessions = keys(clock)
        clock.now += 10_000.0
        value = sessions.mint()
        clock.now -= 10_000.0
        assert sessions.valid(value) is False

    def test_malformed_values_are_refused_without_raising(self) -> None:
        """Empty, unsigned, non-numeric or non-ASCII values are simply invalid."""
        sessions = keys(Clock())
        bad = ["", ".", "123", "abc." + "0" * 64, "1060.000." + "é" * 64, "1060.0." + "z" * 63]
        assert [sessions.valid(value) for value in bad] == [False] * len(bad)

    def test_each_process_draws_its_own_key(self) -> None:
        """Two SessionKeys built without a key refuse each other's values."""
        assert SessionKeys().valid(SessionKeys().mint()) is False
