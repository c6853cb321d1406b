"""One segment end to end: request, parse/validate/repair, one fallback call, an Outcome."""

from __future__ import annotations

import time

from miner.client import CallError, LanesClient, Reply
from miner.metrics import CallMetrics, looks_truncated
from miner.outcome import Outcome, Status
from miner.prompt import build_body, chat_path, prompt_text, prompt_version
from miner.repair import Extraction, ReplyError, extract
from miner.segments import Segment, estimate_tokens
from miner.settings import MinerSettings

__all__ = ["Extractor"]


def _raw(replies: list[str]) -> str | None:
    if not replies:
        return None
    if len(replies) == 1:
        return replies[0]
    return "\n".join(f"--- reply {i} ---\n{r}" for i, r in enumerate(replies, start=1))


class Extractor:
    """Turns a segment into exactly one Outcome; never raises for a bad call or reply."""

    def __init__(self, client: LanesClient, settings: MinerSettings) -> None:
        self._client = client
        self._s = settings
        self._path = chat_path(client.api)  # the client knows which API it speaks

    async def _call(self, segment: Segment, *, fallback: bool) -> Reply:
        s = self._s
        body = build_body(
            segment,
            api=self._client.api,
            model=s.model,
            num_ctx=s.num_ctx,
            num_predict=s.num_predict,
            keep_alive=s.keep_alive,
            fallback=fallback,
        )
        return await self._client.chat(self._path, body)

    def _reply_error(self, exc: ReplyError, metrics: CallMetrics) -> str:
        if metrics.length_stop:
            return f"{exc} (done_reason=length: num_predict {self._s.num_predict} reached)"
        return str(exc)

    async def __call__(self, segment: Segment) -> Outcome:
        """Mine one segment."""
        started = time.monotonic()
        calls: list[CallMetrics] = []
        replies: list[str] = []
        retries = 0
        errors: list[str] = []
        result: Extraction | None = None
        status: Status = "failed"
        for fallback in (False, True):
            try:
                reply = await self._call(segment, fallback=fallback)
            except CallError as exc:
                retries += exc.retries
                which = "fallback call" if fallback else "request"
                errors.append(f"{which} failed: {exc}")
                break
            retries += reply.retries
            calls.append(reply.metrics)
            replies.append(reply.content)
            try:
                result = extract(reply.content, segment.segment_id)
            except ReplyError as exc:
                label = "fallback reply" if fallback else "reply"
                errors.append(f"{label}: {self._reply_error(exc, reply.metrics)}")
                continue
            status = "fallback" if fallback else "repaired" if result.repaired else "ok"
            break
        estimate = estimate_tokens(prompt_text(segment))
        truncated = any(
            looks_truncated(c, num_ctx=self._s.num_ctx, estimated_prompt=estimate) for c in calls
        )
        failed = result is None
        return Outcome(
            segment=segment,
            status=status,
            model=self._s.model,
            prompt_version=prompt_version(),
            items={} if result is None else result.items,
            error="; ".join(errors) if failed else None,
            raw_reply=_raw(replies) if failed else None,
            notes=errors + ([] if result is None else result.notes) if not failed else [],
            calls=calls,
            retries=retries,
            truncated=truncated,
            length_stop=any(c.length_stop for c in calls),
            wall_s=time.monotonic() - started,
        )
