"""The live feed behind `/stats/stream`: one frame per change or tick, fanned out to subscribers.

Rules:
1. A frame is built once (by the `build` callable the app gives) and shared by every
   subscriber, so N open pages cost one `/stats` view per frame, not N.
2. A frame goes out once every `tick_s` (1 s) and at once on a change (a request queued,
   admitted or finished: `changed()`, the request path's only call, which sets a flag), but
   never sooner than `min_gap_s` (0.1 s: at most 10 a second) after the last one, nor sooner
   than `cost_factor` (20) times the last frame's build time: building frames takes at most
   about 5 % of the event loop even when a deep queue makes them dear.
3. Each subscriber has a buffer of `buffer_frames` frames. A subscriber whose buffer is full
   (a stalled or slow reader) is dropped, counted in `dropped`, and its stream is cut; nobody
   ever waits for it.
4. At most `max_subscribers` (32) at once; one more is refused with `FeedFull` (503).
5. `close()` ends every stream (the proxy is stopping) and refuses new subscribers.
6. With no subscriber the feed builds nothing: its task waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from proxy.errors import ProxyError

__all__ = ["MAX_SUBSCRIBERS", "Feed", "FeedFull", "Subscriber"]

log = structlog.get_logger("proxy.dashboard")

MAX_SUBSCRIBERS = 32


class FeedFull(ProxyError):
    """`max_subscribers` streams are open already, or the proxy is stopping."""

    status = 503
    reason = "feed_full"


class Subscriber:
    """One open stream: its bounded buffer of frames (None ends it), and `cut`, which ends the
    stream at once (closes its connection) when it cannot keep up."""

    __slots__ = ("cut", "frames")

    def __init__(self, cut: Callable[[], None], buffer_frames: int) -> None:
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue(buffer_frames)
        self.cut = cut

    async def next_frame(self) -> bytes | None:
        """The next frame to write, or None when the feed ended this stream."""
        return await self.frames.get()


class Feed:
    """Builds frames while someone listens and hands each to every subscriber (rules above)."""

    def __init__(
        self,
        build: Callable[[], bytes],
        *,
        tick_s: float = 1.0,
        min_gap_s: float = 0.1,
        cost_factor: float = 20.0,
        buffer_frames: int = 8,
        max_subscribers: int = MAX_SUBSCRIBERS,
    ) -> None:
        self._build = build
        self.tick_s, self.min_gap_s, self.cost_factor = tick_s, min_gap_s, cost_factor
        self.buffer_frames, self.max_subscribers = buffer_frames, max_subscribers
        self._subscribers: set[Subscriber] = set()
        self._changed = asyncio.Event()
        self._listened = asyncio.Event()
        self.closed = False
        self.frames = 0  # frames built since start
        self.dropped = 0  # subscribers dropped for not keeping up
        self._cost_s = 0.0

    def __len__(self) -> int:
        return len(self._subscribers)

    def changed(self) -> None:
        """Something a page shows changed: send a frame soon (O(1), never blocks)."""
        self._changed.set()

    def subscribe(self, cut: Callable[[], None]) -> Subscriber:
        """A new stream (`cut` closes it); it gets a frame at once. Raises FeedFull."""
        if self.closed:
            raise FeedFull("the proxy is stopping", retry_after_s=1)
        if len(self._subscribers) >= self.max_subscribers:
            raise FeedFull(
                f"{self.max_subscribers} live feeds are open already; close a dashboard",
                retry_after_s=5,
            )
        subscriber = Subscriber(cut, self.buffer_frames)
        self._subscribers.add(subscriber)
        self._listened.set()
        self._changed.set()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """The stream ended (idempotent)."""
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            self._listened.clear()

    def close(self) -> None:
        """End every stream and take no more (idempotent)."""
        self.closed = True
        for subscriber in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                subscriber.frames.put_nowait(None)
                continue
            self._cut(subscriber)
        self._changed.set()
        self._listened.set()

    def publish(self, frame: bytes) -> None:
        """Hand `frame` to every subscriber; drop those whose buffer is full."""
        for subscriber in list(self._subscribers):
            try:
                subscriber.frames.put_nowait(frame)
            except asyncio.QueueFull:
                self.dropped += 1
                log.warning("feed_subscriber_dropped", dropped=self.dropped, open=len(self) - 1)
                self._cut(subscriber)

    def _cut(self, subscriber: Subscriber) -> None:
        self.unsubscribe(subscriber)
        subscriber.cut()

    async def run(self) -> None:
        """Build and publish frames until closed (rules 2 and 6); the app runs it as a task."""
        loop = asyncio.get_running_loop()
        last = -float("inf")
        while not self.closed:
            await self._listened.wait()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(last + self.tick_s):
                    await self._changed.wait()
            gap = max(self.min_gap_s, self.cost_factor * self._cost_s)
            if last + gap > loop.time():
                await asyncio.sleep(last + gap - loop.time())
            if self.closed or not self._subscribers:
                continue
            self._changed.clear()
            last = loop.time()
            frame = self._build()
            self._cost_s = loop.time() - last
            self.frames += 1
            self.publish(frame)
