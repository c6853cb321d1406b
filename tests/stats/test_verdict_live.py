"""Each verdict, driven by the simulator through a real proxy (both on port 0), as /stats says it.

The verdict judges a window of WINDOW_S seconds instead of a minute; each scenario runs its load
until a whole window has passed, then reads /stats once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.stats.verdict import KINDS
from tests.fixtures_proxy import ProxyFactory
from tests.fixtures_sim import SimulatorFactory, base_url
from tests.stats.load import Load, Worker, generate
from tests.waiting import wait_for

WINDOW_S = 3.0


async def stats(url: str) -> dict[str, Any]:
    """One read of the proxy's /stats."""
    async with aiohttp.ClientSession() as session, session.get(url + "/stats") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def after_a_window(url: str) -> dict[str, Any]:
    """/stats once a whole verdict window has passed since now (read by the proxy's uptime)."""
    since = (await stats(url))["uptime_s"]

    async def filled() -> dict[str, Any]:
        doc = await stats(url)
        return doc if doc["uptime_s"] >= since + WINDOW_S + 0.5 else {}  # {}: not yet

    return await wait_for(filled, timeout=WINDOW_S + 30, what="a whole window", interval=0.2)


def kinds(doc: dict[str, Any]) -> list[str]:
    """The primary kind, then the secondary ones."""
    return [doc["verdict"]["kind"], *(v["kind"] for v in doc["secondary"])]


@dataclass(frozen=True)
class Case:
    """One situation: the simulator, the proxy in front of it, the load, what the verdict says."""

    kind: str
    absent: frozenset[str]  # kinds that would contradict it
    sim: dict[str, Any] = field(default_factory=dict)
    proxy: dict[str, Any] = field(default_factory=dict)
    workers: tuple[tuple[Worker, int], ...] = ()


SLOW = {"decode_tps": 200.0}  # 40 tokens take 0.2 s
LOADS = {"client_bound", "ollama_bound", "lanes_bound", "idle"}  # exactly one of them holds

CASES = [
    Case("idle", frozenset(KINDS) - {"idle"}),
    Case(  # one request at a time on 2 lanes
        "client_bound",
        frozenset(LOADS - {"client_bound"}),
        sim={"lanes": 2, **SLOW},
        proxy={"lanes": "auto", "num_parallel": 2},
        workers=((Worker("slow"), 1),),
    ),
    Case(  # 4 at once on the 2 lanes Ollama runs
        "ollama_bound",
        frozenset(LOADS - {"ollama_bound"}) | {"upstream_queueing"},
        sim={"lanes": 2, **SLOW},
        proxy={"lanes": "auto", "num_parallel": 2},
        workers=((Worker("busy"), 4),),
    ),
    Case(  # lanes = 1 set by hand while Ollama runs 3
        "lanes_bound",
        frozenset(LOADS - {"lanes_bound"}) | {"upstream_queueing"},
        sim={"lanes": 3, **SLOW},
        proxy={"lanes": 1, "num_parallel": 3},
        workers=((Worker("busy"), 4),),
    ),
    Case(  # lanes = 3 set by hand while Ollama runs 2: Ollama queues one
        "upstream_queueing",
        frozenset({"idle", "client_bound", "lanes_bound"}),
        sim={"lanes": 2, **SLOW},
        proxy={"lanes": 3, "num_parallel": 2},
        workers=((Worker("busy"), 5),),
    ),
    Case(  # 2500-token prompts at 3000 tokens/s, 20-token answers
        "prefill_bound",
        frozenset({"idle", "lanes_bound", "ollama_bound", "truncating"}),
        sim={"lanes": 2, "prefill_tps": 3000.0, **SLOW},
        proxy={"lanes": "auto", "num_parallel": 2},
        workers=((Worker("rag", generate(words=2000, num_predict=20)), 1),),
    ),
    Case(  # two clients alternate num_ctx on one lane: every request reloads the model
        "reload_bound",
        frozenset({"idle", "client_bound", "lanes_bound", "truncating"}),
        sim={"lanes": 1, "load_seconds": 0.3, **SLOW},
        proxy={"lanes": "auto", "num_parallel": 1, "reload_warn_ms": 100.0},
        workers=(
            (Worker("notebook", generate(num_ctx=2048)), 1),
            (Worker("webui", generate(num_ctx=4096)), 1),
        ),
    ),
    Case(  # a 5000-token prompt with num_ctx 512
        "truncating",
        frozenset({"idle", "lanes_bound", "ollama_bound", "reload_bound"}),
        sim={"lanes": 1, **SLOW},
        proxy={"lanes": "auto", "num_parallel": 1},
        workers=((Worker("notebook", generate(words=4000, num_ctx=512, num_predict=20)), 1),),
    ),
]


async def start(simulator: SimulatorFactory, proxy: ProxyFactory, case: Case) -> TestServer:
    sim = await simulator(**case.sim)
    options = {"lanes": 2, "verdict_window_s": WINDOW_S, "health_interval_s": 0.5} | case.proxy
    return await proxy(base_url(sim), **options)


class TestVerdictLive:
    @pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
    async def test_the_simulator_drives_each_verdict(
        self, simulator: SimulatorFactory, proxy: ProxyFactory, case: Case
    ) -> None:
        """Each situation gives its verdict as the primary one, and none that contradicts it."""
        prx = await start(simulator, proxy, case)
        async with Load(base_url(prx)) as load:
            for worker, count in case.workers:
                load.start(worker, count)
            doc = await after_a_window(base_url(prx))
        assert doc["verdict"]["kind"] == case.kind, doc["verdict"]
        assert set(kinds(doc)) & case.absent == set(), kinds(doc)

    async def test_truncating_names_the_client_and_the_num_ctx_that_fits(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """A 5000-token prompt cut to num_ctx 512: the fix asks for num_ctx 8192, for notebook."""
        case = next(c for c in CASES if c.kind == "truncating")
        prx = await start(simulator, proxy, case)
        async with Load(base_url(prx)) as load:
            load.start(*case.workers[0])
            await wait_for(lambda: load.completed >= 1, timeout=30, what="one cut prompt")
            doc = await stats(base_url(prx))
        verdict = doc["verdict"]
        assert verdict["kind"] == "truncating"
        assert "notebook" in verdict["explanation"]
        assert verdict["numbers"]["fit_num_ctx"] == 8192
        assert "num_ctx 8192" in verdict["fix"]

    async def test_reload_bound_names_the_option_and_each_clients_value(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """Alternating num_ctx: the verdict names num_ctx, and which client sends which value."""
        case = next(c for c in CASES if c.kind == "reload_bound")
        prx = await start(simulator, proxy, case)
        async with Load(base_url(prx)) as load:
            for worker, count in case.workers:
                load.start(worker, count)
            doc = await after_a_window(base_url(prx))
        explanation = doc["verdict"]["explanation"]
        assert "different num_ctx" in explanation, explanation
        assert "2048 from notebook" in explanation
        assert "4096 from webui" in explanation

    async def test_more_concurrency_moves_client_bound_to_ollama_bound(
        self, simulator: SimulatorFactory, proxy: ProxyFactory
    ) -> None:
        """1. One request at a time on 2 lanes: client_bound.
        2. The same load generator raised to 4 at once, past the lanes: ollama_bound."""
        prx = await start(simulator, proxy, CASES[1])
        async with Load(base_url(prx)) as load:
            load.start(Worker("miner"))
            first = await after_a_window(base_url(prx))
            load.start(Worker("miner"), 3)
            second = await after_a_window(base_url(prx))
        assert (first["verdict"]["kind"], second["verdict"]["kind"]) == (
            "client_bound",
            "ollama_bound",
        )
        assert "client_bound" not in kinds(second)
