"""`lanes demo`: the whole system on the simulator, as `make demo` runs it."""

from __future__ import annotations

import io
import re

import aiohttp

from proxy.simulator.demo import WORKERS, run_demo
from proxy.stats.verdict import KINDS


class TestDemo:
    async def test_serves_the_person_first_mines_and_prints_stats(self) -> None:
        """1. 12 batch requests and one interactive chat share 2 lanes through the proxy.
        2. The interactive chat overtakes most of the queued batch requests.
        3. The miner mines the bundled sample with every segment ok.
        4. `lanes stats` follows, whose counters saw every request.
        5. The miner's summary and the demo both end with the proxy's verdict of the run.
        6. It printed the live dashboard's URL, and the page was served there while it ran."""
        out = io.StringIO()
        served: list[int] = []

        async def watch(url: str) -> None:
            async with aiohttp.ClientSession() as session, session.get(url) as resp:
                served.append(resp.status)

        assert await run_demo(out, watch=watch) == 0
        text = out.getvalue()
        shown = re.search(r"live dashboard: (http://127\.0\.0\.1:\d+/dashboard)", text)
        assert (shown is not None, served) == (True, [200])
        assert "GET /api/version through the proxy -> 200" in text
        ahead = re.search(r"went ahead of (\d+) batch requests", text)
        assert ahead is not None
        # 12 requests on 2 lanes: 10 wait; the person may tie with one batch request for a lane.
        assert int(ahead.group(1)) >= WORKERS - 4
        mined = re.search(r"(\d+) mined: (\d+) ok, 0 repaired, 0 fallback, 0 failed", text)
        assert mined is not None
        assert mined.group(1) == mined.group(2)
        assert int(mined.group(1)) > 0
        assert "lanes.configured" in text
        assert re.search(r"counters\.cancelled_while_running +0\b", text)
        kinds = "|".join(KINDS)
        assert re.search(rf"\]   verdict    ({kinds}): ", text)
        assert re.search(rf"\] verdict of this run: ({kinds}): .* Fix: ", text.splitlines()[-1])
