"""Records one real verdict per kind for docs/verdict.md: `python -m tests.stats.record_verdicts`.

Every case of `tests/stats/test_verdict_live.py` runs at once, each against its own simulator
behind its own proxy with the default 60 s verdict window; once a whole window has passed,
each case's `/stats` `verdict` and `secondary` replace the `json` block under the kind's
heading in docs/verdict.md.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp

from proxy.listener import start_app
from proxy.log import configure_logging
from proxy.relay.app import create_app
from proxy.simulator.server import start
from tests.fixtures_proxy import proxy_settings
from tests.fixtures_sim import sim_settings
from tests.stats.load import Load
from tests.stats.test_verdict_live import CASES, Case

PAGE = Path(__file__).resolve().parents[2] / "docs" / "verdict.md"
WINDOW_S = 60.0


async def record(case: Case) -> dict[str, Any]:
    """Run one case for a whole window; its `/stats` verdict and secondary verdicts."""
    sim = await start(sim_settings(listen="127.0.0.1:0", **case.sim))
    options: dict[str, Any] = {"lanes": 2, "health_interval_s": 0.5, "log_level": "error"}
    settings = proxy_settings(sim.url, **(options | case.proxy))
    proxy = await start_app(create_app(settings), "127.0.0.1:0")
    try:
        async with Load(proxy.url) as load:
            for worker, count in case.workers:
                load.start(worker, count)
            await asyncio.sleep(WINDOW_S + 1.0)
            async with (
                aiohttp.ClientSession() as session,
                session.get(proxy.url + "/stats") as resp,
            ):
                doc: dict[str, Any] = await resp.json()
    finally:
        await proxy.stop()
        await sim.stop()
    return {"verdict": doc["verdict"], "secondary": doc["secondary"]}


def write(page: str, kind: str, excerpt: dict[str, Any]) -> str:
    """`page` with the first `json` block after the heading of `kind` replaced by `excerpt`."""
    pattern = re.compile(rf"(^## `{kind}`\n.*?```json\n)(.*?)(```)", re.S | re.M)
    body = json.dumps(excerpt, indent=2, ensure_ascii=False) + "\n"
    updated, found = pattern.subn(lambda m: m.group(1) + body + m.group(3), page, count=1)
    if not found:
        raise SystemExit(f"docs/verdict.md has no json block under ## `{kind}`")
    return updated


async def main() -> None:
    """Record every case at once and write the page."""
    configure_logging("error")
    excerpts = await asyncio.gather(*(record(case) for case in CASES))
    page = PAGE.read_text(encoding="utf-8")
    for case, excerpt in zip(CASES, excerpts, strict=True):
        print(f"{case.kind}: {excerpt['verdict']['kind']}")
        page = write(page, case.kind, excerpt)
    PAGE.write_text(page, encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main())
