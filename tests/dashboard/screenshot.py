"""`python -m tests.dashboard.screenshot [PATH]`: a screenshot of the dashboard under the demo's
load (docs/dashboard.png by default), taken with headless Chromium while `lanes demo` runs."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

from playwright.async_api import Page, async_playwright

from proxy.simulator.demo import run_demo
from tests.dashboard.browser import chromium_path
from tests.waiting import wait_for

DEFAULT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
# The moment worth showing: the miner holds lanes while others wait, a warning has come up,
# and the sparklines have a few seconds of history.
BUSY = """() => document.querySelectorAll('.lane-cell.held[data-client="miner"]').length > 0
  && document.querySelectorAll('#queue-clients tr.queue-client').length > 0
  && document.querySelectorAll('#warnings li[data-kind]').length > 0
  && (document.querySelector('.spark[data-series="output"] polyline')
      ?.getAttribute("points").split(" ").length || 0) >= 6"""


async def _shoot(page: Page, url: str, path: Path) -> None:
    await page.goto(url)
    await wait_for(lambda: page.evaluate(BUSY), timeout=120.0, what="the miner's busiest moment")
    await page.screenshot(path=str(path), full_page=True)


async def take(path: Path) -> None:
    """Run the demo and screenshot its dashboard mid-run into `path`."""
    executable = chromium_path()
    if executable is None:
        raise SystemExit("no Chromium found: apt-get install chromium, or set LANES_CHROMIUM")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable)
        page = await browser.new_page(viewport={"width": 1360, "height": 900}, color_scheme="dark")
        shot = asyncio.Event()

        async def watch(url: str) -> None:
            await _shoot(page, url, path)
            shot.set()

        await run_demo(io.StringIO(), watch=watch)
        await browser.close()
    if not shot.is_set():
        raise SystemExit("the demo ended before the dashboard showed the miner at work")
    print(f"wrote {path}")


if __name__ == "__main__":
    asyncio.run(take(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT))
