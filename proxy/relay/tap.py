"""Tap: what one laned response tells on its way through: statistics, and its client's charge."""

from __future__ import annotations

import time

from proxy.relay.gate import Lease
from proxy.stats.chunks import FinalMetrics, StreamTally
from proxy.stats.recorder import Recorder

__all__ = ["Tap"]


class Tap:
    """Counts a laned response's streamed tokens once, for both of their readers: the recorder
    (statistics) and the client's charge (queue rule 4); `settle()` charges what the answer
    counted and returns it, for the recorder's `request_finished`."""

    __slots__ = ("_charged", "_lease", "_recorder", "_rid", "_tally")

    CHARGE_EVERY = 16  # streamed tokens between live charges (the end settles exactly)

    def __init__(self, recorder: Recorder | None, rid: int, lease: Lease, *, sse: bool) -> None:
        self._recorder = recorder
        self._rid = rid
        self._lease = lease
        self._tally = StreamTally(sse=sse)
        self._charged = 0  # streamed tokens charged so far

    def headers(self, status: int) -> None:
        """Upstream answered with `status`."""
        if self._recorder is not None:
            self._recorder.upstream_headers(self._rid, status=status, now=time.monotonic())

    def chunk(self, data: bytes) -> None:
        """One chunk went to the client."""
        tally = self._tally
        new = tally.feed(data)
        if self._recorder is not None:
            self._recorder.chunk_relayed(self._rid, new, time.monotonic())
        if new and tally.tokens - self._charged >= self.CHARGE_EVERY:
            self._charged = tally.tokens
            self._lease.charge(output_tokens=tally.tokens)

    def settle(self) -> FinalMetrics:
        """The answer ended: charge Ollama's own counts, else what streamed (a cut answer, or an
        error: then the prompt estimate stays and the client's usual output is not updated);
        returns Ollama's counts."""
        final = self._tally.final()
        counted = final.eval_tokens is not None  # Ollama's own count: the answer is complete
        output = final.eval_tokens if counted else self._tally.tokens
        self._lease.charge(prompt_tokens=final.prompt_tokens, output_tokens=output, final=counted)
        return final
