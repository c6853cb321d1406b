"""Feed: frames on change and on the tick, fanned out to bounded subscribers (no sockets)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from proxy.dashboard.feed import Feed, FeedFull


class Builder:
    """A frame source that counts its builds and numbers its frames."""

    def __init__(self) -> None:
        self.builds = 0

    def __call__(self) -> bytes:
        self.builds += 1
        return f"frame {self.builds}".encode()


class Cuts:
    """Records which subscribers the feed cut."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def of(self, name: str) -> Cut:
        return Cut(self.names, name)


class Cut:
    def __init__(self, names: list[str], name: str) -> None:
        self.names, self.name = names, name

    def __call__(self) -> None:
        self.names.append(self.name)


@contextlib.asynccontextmanager
async def running(feed: Feed) -> AsyncIterator[Feed]:
    task = asyncio.create_task(feed.run())
    try:
        yield feed
    finally:
        feed.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


HOUR = 3600.0  # a tick that never comes while a test runs: only changes send frames


class TestFrames:
    async def test_a_new_subscriber_gets_a_frame_at_once(self) -> None:
        """Subscribing sends the current frame without waiting for the tick."""
        build = Builder()
        async with running(Feed(build, tick_s=HOUR)) as feed:
            sub = feed.subscribe(Cuts().of("a"))
            assert await asyncio.wait_for(sub.next_frame(), 30) == b"frame 1"

    async def test_a_change_sends_a_frame_before_the_tick(self) -> None:
        """A request queued, admitted or finished (`changed`) sends a frame at once."""
        build = Builder()
        async with running(Feed(build, tick_s=HOUR, min_gap_s=0.0)) as feed:
            sub = feed.subscribe(Cuts().of("a"))
            await sub.next_frame()
            feed.changed()
            assert await asyncio.wait_for(sub.next_frame(), 30) == b"frame 2"

    async def test_the_tick_sends_frames_without_changes(self) -> None:
        """With nothing changing, frames still come once a tick."""
        build = Builder()
        async with running(Feed(build, tick_s=0.05, min_gap_s=0.0)) as feed:
            sub = feed.subscribe(Cuts().of("a"))
            frames = [await asyncio.wait_for(sub.next_frame(), 30) for _ in range(3)]
            assert frames == [b"frame 1", b"frame 2", b"frame 3"]

    async def test_a_burst_of_changes_makes_one_frame(self) -> None:
        """Fifty changes before the feed runs again are one frame, not fifty."""
        build = Builder()
        async with running(Feed(build, tick_s=HOUR, min_gap_s=0.0)) as feed:
            sub = feed.subscribe(Cuts().of("a"))
            await sub.next_frame()
            for _ in range(50):
                feed.changed()
            await asyncio.wait_for(sub.next_frame(), 30)
            assert (build.builds, sub.frames.qsize()) == (2, 0)

    async def test_every_subscriber_gets_the_same_frame_built_once(self) -> None:
        """Three open pages cost one build per frame, and all three get its bytes."""
        build = Builder()
        async with running(Feed(build, tick_s=HOUR)) as feed:
            cuts = Cuts()
            subs = [feed.subscribe(cuts.of(name)) for name in "abc"]
            frames = [await asyncio.wait_for(sub.next_frame(), 30) for sub in subs]
            assert (frames, build.builds) == ([b"frame 1"] * 3, 1)


class Stamps:
    """A frame source that notes the loop time of each build and can take `busy_s` to build."""

    def __init__(self, busy_s: float = 0.0) -> None:
        self.times: list[float] = []
        self.busy_s = busy_s

    def __call__(self) -> bytes:
        loop = asyncio.get_running_loop()
        start = loop.time()
        while loop.time() - start < self.busy_s:
            pass  # a dear frame: the build holds the loop this long
        self.times.append(start)
        return b"frame"

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


async def _frames_while_changing(feed: Feed, count: int) -> None:
    """Read `count` frames while something changes all the time."""
    async with running(feed):
        sub = feed.subscribe(Cuts().of("a"))
        for _ in range(count):
            feed.changed()
            await asyncio.wait_for(sub.next_frame(), 30)


EARLY = 0.002  # the loop may run a timer this much early (its clock resolution, and then some)


class TestPace:
    async def test_constant_changes_send_at_most_one_frame_per_min_gap(self) -> None:
        """With changes all the time, frames are still min_gap_s apart (0.1 s: 10 a second)."""
        stamps = Stamps()
        await _frames_while_changing(Feed(stamps, tick_s=HOUR, min_gap_s=0.05), 5)
        assert [gap >= 0.05 - EARLY for gap in stamps.gaps()] == [True] * 4

    async def test_a_dear_frame_spaces_the_next_by_its_cost(self) -> None:
        """A frame that took 20 ms to build starts the next no sooner than cost_factor x 20 ms
        after it began: building frames takes at most 1/cost_factor of the loop."""
        stamps = Stamps(busy_s=0.02)
        feed = Feed(stamps, tick_s=HOUR, min_gap_s=0.0, cost_factor=5.0)
        await _frames_while_changing(feed, 3)
        assert [gap >= 0.02 * 5 - EARLY for gap in stamps.gaps()] == [True] * 2


class TestSubscribers:
    def test_a_full_buffer_drops_the_subscriber_and_counts_it(self) -> None:
        """A reader that took none of its 2 buffered frames is cut at the third; others stay."""
        feed = Feed(Builder(), buffer_frames=2)
        cuts = Cuts()
        stalled, reading = feed.subscribe(cuts.of("stalled")), feed.subscribe(cuts.of("reading"))
        for number in range(3):
            feed.publish(b"frame %d" % number)
            reading.frames.get_nowait()
        assert (cuts.names, feed.dropped, len(feed)) == (["stalled"], 1, 1)
        assert stalled.frames.qsize() == 2

    def test_the_33rd_subscriber_is_refused_with_503(self) -> None:
        """32 streams may be open at once; one more gets FeedFull, a 503."""
        feed = Feed(Builder())
        cuts = Cuts()
        for number in range(32):
            feed.subscribe(cuts.of(str(number)))
        with pytest.raises(FeedFull) as refused:
            feed.subscribe(cuts.of("33"))
        assert (refused.value.status, len(feed)) == (503, 32)

    def test_a_place_frees_when_a_subscriber_leaves(self) -> None:
        """After one of 32 streams ends, a new one is accepted."""
        feed = Feed(Builder())
        cuts = Cuts()
        subs = [feed.subscribe(cuts.of(str(number))) for number in range(32)]
        feed.unsubscribe(subs[0])
        feed.subscribe(cuts.of("new"))
        assert len(feed) == 32

    async def test_close_ends_every_stream(self) -> None:
        """Closing the feed hands every subscriber its end (None) and cuts nobody who reads."""
        feed = Feed(Builder())
        cuts = Cuts()
        subs = [feed.subscribe(cuts.of(name)) for name in "ab"]
        feed.close()
        assert ([await sub.next_frame() for sub in subs], cuts.names) == ([None, None], [])

    def test_close_cuts_a_stream_whose_buffer_is_full(self) -> None:
        """A stalled stream cannot take its end: close cuts it instead."""
        feed = Feed(Builder(), buffer_frames=1)
        cuts = Cuts()
        feed.subscribe(cuts.of("stalled"))
        feed.publish(b"frame")
        feed.close()
        assert cuts.names == ["stalled"]

    def test_a_closed_feed_takes_no_subscriber(self) -> None:
        """While the proxy stops, a new stream gets FeedFull (503)."""
        feed = Feed(Builder())
        feed.close()
        with pytest.raises(FeedFull):
            feed.subscribe(Cuts().of("late"))
