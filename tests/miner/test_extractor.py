"""One segment end to end against a scripted server: ok, repaired, fallback and failed."""

from __future__ import annotations

import json
from typing import Any

from miner.client import LanesClient
from miner.extractor import Extractor
from miner.prompt import prompt_version
from miner.segments import Segment
from miner.settings import MinerSettings
from tests.miner.conftest import FINAL, ServerFactory, Sleeps

SEG = Segment("src", "seg_0000_abc", 0, "Ana", "00:01", "00:09", "Canary releases are safer.")
SPAN = {"segment_id": "seg_0000_abc", "quote": "Canary releases", "t0": "00:01", "t1": "00:09"}
CLAIM = {
    "claim_text": "Canary releases are safer.",
    "claim_type": "causal",
    "domain": "ops",
    "stance": "asserts",
    "evidence_spans": [SPAN],
}


def _reply(content: str, **metrics: Any) -> tuple[str, int, dict[str, Any]]:
    return ("json", 200, FINAL | {"message": {"role": "assistant", "content": content}} | metrics)


def _doc(**parts: Any) -> str:
    return json.dumps({"claims": [], "jargon": [], "people": [], "mental_models": []} | parts)


async def _mine(url: str, **values: Any) -> Any:
    settings = MinerSettings(url=url, **values)
    async with LanesClient(url, api=settings.api, sleep=Sleeps()) as client:
        return await Extractor(client, settings)(SEG)


class TestExtractor:
    async def test_ok(self, scripted: ServerFactory) -> None:
        """A valid first reply: ok, one call, items and metrics kept."""
        url, seen = await scripted([_reply(_doc(claims=[CLAIM]))])
        outcome = await _mine(url)
        assert (outcome.status, len(outcome.calls), outcome.item_count) == ("ok", 1, 1)
        assert outcome.metrics.prompt_eval_count == 1200
        assert outcome.prompt_version == prompt_version()
        body = json.loads(seen[0]["body"])
        assert (body["options"]["temperature"], "format" in body) == (0.0, True)

    async def test_repaired(self, scripted: ServerFactory) -> None:
        """An unmapped enum is repaired on the first reply; no fallback call."""
        url, seen = await scripted([_reply(_doc(claims=[{**CLAIM, "stance": "supports"}]))])
        outcome = await _mine(url)
        assert (outcome.status, len(seen)) == ("repaired", 1)
        assert outcome.items["claims"][0]["stance"] == "asserts"

    async def test_fallback(self, scripted: ServerFactory) -> None:
        """A broken first reply triggers one fallback call without format at temperature 0.3."""
        url, seen = await scripted([_reply('{"claims": ['), _reply(_doc(claims=[CLAIM]))])
        outcome = await _mine(url)
        assert (outcome.status, len(outcome.calls), outcome.item_count) == ("fallback", 2, 1)
        assert outcome.notes[0].startswith("reply: reply is not JSON")
        second = json.loads(seen[1]["body"])
        assert ("format" in second, second["options"]["temperature"]) == (False, 0.3)
        assert second["options"]["num_ctx"] == json.loads(seen[0]["body"])["options"]["num_ctx"]

    async def test_failed_keeps_both_replies(self, scripted: ServerFactory) -> None:
        """Both replies unusable: failed, both reasons, both raw replies, no items."""
        url, _ = await scripted(
            [_reply("nope", done_reason="length", eval_count=2048), _reply("still nope")]
        )
        outcome = await _mine(url)
        assert outcome.status == "failed"
        assert outcome.items == {}
        assert "done_reason=length: num_predict 2048 reached" in outcome.error
        assert "fallback reply: reply is not JSON" in outcome.error
        assert outcome.raw_reply == "--- reply 1 ---\nnope\n--- reply 2 ---\nstill nope"
        assert outcome.length_stop

    async def test_server_error_fails_without_fallback(self, scripted: ServerFactory) -> None:
        """A 500 fails the segment at once with the server's message."""
        url, seen = await scripted([("json", 500, {"error": "runner crashed"})])
        outcome = await _mine(url)
        assert (outcome.status, len(seen), outcome.calls) == ("failed", 1, [])
        assert outcome.error == "request failed: HTTP 500: runner crashed"
        assert outcome.raw_reply is None

    async def test_truncation_flag(self, scripted: ServerFactory) -> None:
        """prompt_eval_count at num_ctx flags the segment truncated."""
        url, _ = await scripted([_reply(_doc(), prompt_eval_count=1024)])
        outcome = await _mine(url, num_ctx=1024)
        assert (outcome.status, outcome.truncated) == ("ok", True)

    async def test_openai_api(self, scripted: ServerFactory) -> None:
        """On /v1 the body carries response_format and the reply comes from choices."""
        ok = {
            "choices": [{"message": {"content": _doc()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 12},
        }
        url, seen = await scripted([("json", 200, ok)])
        outcome = await _mine(url, api="openai")
        assert (outcome.status, outcome.metrics.eval_count) == ("ok", 12)
        assert json.loads(seen[0]["body"])["response_format"]["type"] == "json_schema"
