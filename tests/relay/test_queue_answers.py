"""The queue's answers through real sockets: `/queue`, `X-Lanes-Queue-Position`, fair share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from proxy.relay.gate import LaneGate
from tests.fixtures_proxy import ProxyFactory, gate_of
from tests.fixtures_sim import HOLD_TOKENS, SimulatorFactory, base_url
from tests.waiting import PATIENCE_S, wait_for

MODEL = "llama3.2:latest"


def _body(prompt: str = "hi", tokens: int = 3) -> dict[str, Any]:
    return {"model": MODEL, "prompt": prompt, "stream": False, "options": {"num_predict": tokens}}


class Client:
    """Requests as one client key and priority; remembers each answer's headers and body."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.finished: list[str] = []  # "key:n" in the order answers completed

    async def generate(
        self, key: str, priority: str = "normal", *, prompt: str = "hi", tokens: int = 3, n: int = 0
    ) -> tuple[dict[str, str], dict[str, Any]]:
        head = {"X-Lanes-Client": key, "X-Lanes-Priority": priority}
        body = _body(prompt, tokens)
        async with self.session.post(self.url + "/api/generate", json=body, headers=head) as r:
            doc: dict[str, Any] = await r.json()
            self.finished.append(f"{key}:{n}")
            return dict(r.headers), doc

    async def get(self, path: str) -> dict[str, Any]:
        async with self.session.get(self.url + path) as resp:
            assert resp.status == 200
            doc: dict[str, Any] = await resp.json()
            return doc


@asynccontextmanager
async def held_lane(
    simulator: SimulatorFactory, proxy: ProxyFactory, **settings: Any
) -> AsyncIterator[tuple[Client, LaneGate, asyncio.Task[Any]]]:
    """A proxy with one lane, held by a `holder` request until the returned task is cancelled."""
    sim = await simulator(lanes=1)
    prx: TestServer = await proxy(base_url(sim), lanes=1, **settings)
    gate = gate_of(prx)
    async with aiohttp.ClientSession() as session:
        client = Client(session, base_url(prx))
        holder = asyncio.create_task(client.generate("holder", tokens=HOLD_TOKENS))
        await wait_for(lambda: gate.busy == 1, timeout=PATIENCE_S, what="the holder's lane")
        try:
            yield client, gate, holder
        finally:
            holder.cancel()
            await asyncio.gather(holder, return_exceptions=True)


def _depth(gate: LaneGate, n: int) -> Callable[[], bool]:
    return lambda: gate.depth == n


async def _queue_up(
    client: Client, gate: LaneGate, arrivals: list[tuple[str, str]], **kw: Any
) -> list[asyncio.Task[tuple[dict[str, str], dict[str, Any]]]]:
    """Send `arrivals` (key, priority) one at a time, each queued before the next is sent."""
    tasks = []
    for n, (key, priority) in enumerate(arrivals, start=1):
        tasks.append(asyncio.create_task(client.generate(key, priority, n=n, **kw)))
        await wait_for(_depth(gate, n), timeout=PATIENCE_S, what=f"{n} queued")
    return tasks


class TestQueueEndpoint:
    async def test_positions_and_estimates_under_a_known_load(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. One lane, held. 2. a, a (normal), b (batch), c (interactive) queue in that order.
        3. /queue lists c, a, a, b with their class and overall positions, and starts 1 s apart
           (no lane-hold time measured yet: 1 s per turn); ?client=a keeps a's two rows."""
        async with held_lane(simulator, proxy) as (client, gate, _):
            arrivals = [("a", "normal"), ("a", "normal"), ("b", "batch"), ("c", "interactive")]
            tasks = await _queue_up(client, gate, arrivals)
            doc = await client.get("/queue")
            only_a = await client.get("/queue?client=a")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        rows = [
            (r["client"], r["klass"], r["position_in_class"], r["position"], r["eta_ms"])
            for r in doc["waiting"]
        ]
        assert rows == [
            ("c", "interactive", 1, 1, 1000.0),
            ("a", "normal", 1, 2, 2000.0),
            ("a", "normal", 2, 3, 3000.0),
            ("b", "batch", 1, 4, 4000.0),
        ]
        assert (doc["depth"], doc["lanes"], doc["busy"], doc["policy"]) == (4, 1, 1, "tokens")
        assert all(r["waited_ms"] >= 0 and r["model"] == MODEL for r in doc["waiting"])
        assert [r["position"] for r in only_a["waiting"]] == [2, 3]
        assert only_a["depth"] == 4

    async def test_it_shows_no_text(self, simulator: SimulatorFactory, proxy: ProxyFactory) -> None:
        """The prompt of a waiting request appears nowhere in /queue."""
        async with held_lane(simulator, proxy) as (client, gate, _):
            tasks = await _queue_up(client, gate, [("a", "normal")], prompt="secret-words")
            text = await (await client.session.get(client.url + "/queue")).text()
            tasks[0].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert "secret-words" not in text
        assert '"client":"a"' in text

    async def test_the_token_rule_applies(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """/queue refuses a request without the token, like every route of the proxy."""
        sim = await simulator(lanes=1)
        prx = await proxy(base_url(sim), lanes=1, auth_token="s3cret-token")
        async with aiohttp.ClientSession() as s:
            async with s.get(base_url(prx) + "/queue") as resp:
                assert resp.status == 401
            auth = {"Authorization": "Bearer s3cret-token"}
            async with s.get(base_url(prx) + "/queue", headers=auth) as resp:
                assert resp.status == 200


class TestQueuePositionHeader:
    async def test_each_answer_carries_its_arrival_position(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. One lane, held. 2. a, a, b (batch), then c (interactive) queue. 3. The holder is let
        go. 4. Each answer's X-Lanes-Queue-Position is its projected place when it arrived: a 1,
           a 2, b 3, and c 1 (it went ahead of everyone); a request that never waited says 0."""
        async with held_lane(simulator, proxy) as (client, gate, holder):
            arrivals = [("a", "normal"), ("a", "normal"), ("b", "batch"), ("c", "interactive")]
            tasks = await _queue_up(client, gate, arrivals)
            holder.cancel()
            answers = await asyncio.gather(*tasks)
            alone, _ = await client.generate("d")
        positions = [head["X-Lanes-Queue-Position"] for head, _ in answers]
        assert positions == ["1", "2", "3", "1"]
        assert alone["X-Lanes-Queue-Position"] == "0"
        assert client.finished[:4] == ["c:4", "a:1", "a:2", "b:3"]


class TestFairShareThroughTheProxy:
    async def test_a_long_prompt_costs_its_client_turns(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. One lane, held. 2. big, big (8,000-character prompts), small, small queue.
        3. With `tokens`, big's first request is charged its prompt, so both of small's go
           before big's second; with `requests` they alternate."""
        orders = {}
        for policy in ("tokens", "requests"):
            async with held_lane(simulator, proxy, fairness=policy) as (client, gate, holder):
                tasks = []
                for n, (key, prompt) in enumerate(
                    [("big", "w" * 8000), ("big", "w" * 8000), ("small", "hi"), ("small", "hi")],
                    start=1,
                ):
                    tasks.append(asyncio.create_task(client.generate(key, prompt=prompt, n=n)))
                    await wait_for(_depth(gate, n), timeout=PATIENCE_S, what="queued")
                holder.cancel()
                await asyncio.gather(*tasks)
                orders[policy] = client.finished[:4]
        assert orders["tokens"] == ["big:1", "small:3", "small:4", "big:2"]
        assert orders["requests"] == ["big:1", "small:3", "big:2", "small:4"]

    async def test_stats_and_metrics_show_each_clients_share(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Served tokens are w_in x prompt_eval_count + w_out x eval_count of the answers; the
        5-minute shares add up to 1; /metrics exports them when client labels are on."""
        sim = await simulator(lanes=2)
        prx = await proxy(base_url(sim), lanes=2, metrics_client_labels=True, w_out=3.0)
        async with aiohttp.ClientSession() as s:
            client = Client(s, base_url(prx))
            answers = [await client.generate(k, tokens=t) for k, t in (("x", 4), ("y", 9))]
            stats = await client.get("/stats")
            async with s.get(base_url(prx) + "/metrics") as resp:
                metrics = await resp.text()
        expected = {
            key: doc["prompt_eval_count"] + 3 * doc["eval_count"]
            for key, (_, doc) in zip("xy", answers, strict=True)
        }
        rows = stats["clients"]
        assert {k: rows[k]["served_tokens"] for k in "xy"} == expected
        total = sum(expected.values())
        assert {k: rows[k]["served_share_5m"] for k in "xy"} == {
            k: round(v / total, 3) for k, v in expected.items()
        }
        assert all(rows[k]["service_counter"] is not None for k in "xy")
        assert f'lanes_client_served_tokens_total{{client="x"}} {float(expected["x"])}' in metrics

    async def test_a_running_stream_is_charged_as_it_streams(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """While a long answer streams, its client's counter grows with the tokens relayed,
        before the answer ends (w_out per token, charged every 16 tokens)."""
        sim = await simulator(lanes=1, decode_tps=200.0)
        prx = await proxy(base_url(sim), lanes=1)
        service = gate_of(prx).queue.service
        body = {"model": MODEL, "prompt": "hi", "options": {"num_predict": HOLD_TOKENS}}
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                base_url(prx) + "/api/generate", json=body, headers={"X-Lanes-Client": "w"}
            ) as resp,
        ):
            await wait_for(
                lambda: service.counter("w") >= 1 + 2 * 48,
                timeout=PATIENCE_S,
                what="48 streamed tokens charged",
            )
            assert resp.status == 200
            assert not resp.content.at_eof()
