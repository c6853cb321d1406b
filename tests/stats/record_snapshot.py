"""Records a real `/stats` answer and its `lanes top` frame for the docs and the schema tests.

Run `python -m tests.stats.record_snapshot` after a change of the `/stats` schema: it starts
the simulator (2 slots, as its own process) behind the proxy (3 lanes set by hand, so Ollama
queues one request), sends the
requests of three clients (a notebook with one prompt that gets truncated, 12 miner requests,
3 web UI chats), and while 3 lanes are busy and 7 requests wait it writes
`tests/stats/data/stats_snapshot.json` (and `/queue` of the same moment in
`queue_snapshot.json`), `tests/stats/data/top_frame.txt`, the JSON and text
examples in `docs/stats.md` and the excerpt in `README.md`.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console

from proxy.listener import Listener, start_app
from proxy.log import configure_logging
from proxy.relay.app import create_app as create_proxy
from proxy.settings import ProxySettings
from proxy.stats.top import render_frame
from tests.machine.processes import child_env, simulator_process

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
MODEL = "qwen2.5:7b-instruct"
WIDTH = 110
# The simulator, a process of its own so that the proxy reads its OLLAMA_NUM_PARALLEL.
SIMULATOR = {
    "LANES_SIM_PREFILL_TPS": "3000",
    "LANES_SIM_DECODE_TPS": "60",
    "LANES_SIM_DEFAULT_NUM_CTX": "2048",
    "LANES_SIM_SEED": "7",
}


def frame(doc: dict[str, Any], queue: dict[str, Any] | None = None) -> str:
    """The `lanes top` frame of `doc` (and `/queue`), as plain text `WIDTH` columns wide."""
    console = Console(
        width=WIDTH, record=True, color_system=None, force_terminal=False, file=io.StringIO()
    )
    console.print(render_frame(doc, WIDTH, queue))
    return console.export_text()


async def _generate(
    session: aiohttp.ClientSession, url: str, client: str, priority: str, words: int, tokens: int
) -> None:
    body = {
        "model": MODEL,
        "prompt": " ".join(["word"] * words),
        "options": {"num_predict": tokens},
    }
    head = {"X-Lanes-Client": client, "X-Lanes-Priority": priority}
    async with session.post(url + "/api/generate", json=body, headers=head) as resp:
        await resp.read()


async def record(sim_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the scenario; return `/stats` and `/queue` once 7 requests completed and 7 wait."""
    settings = ProxySettings(
        listen="127.0.0.1:0", upstream=sim_url, lanes=3, log_level="error", health_interval_s=0.5
    )
    proxy: Listener = await start_app(create_proxy(settings), "127.0.0.1:0")
    try:
        async with aiohttp.ClientSession() as session:
            work = [
                _generate(session, proxy.url, "notebook", "normal", 4000, 20),
                _generate(session, proxy.url, "notebook", "normal", 20, 20),
            ]
            work += [_generate(session, proxy.url, "webui", "normal", 40, 60) for _ in range(3)]
            work += [_generate(session, proxy.url, "miner", "batch", 50, 30) for _ in range(12)]
            tasks = [asyncio.create_task(w) for w in work]
            doc: dict[str, Any] = {}
            while True:
                async with session.get(proxy.url + "/stats") as resp:
                    doc = await resp.json()
                async with session.get(proxy.url + "/queue") as resp:
                    queue: dict[str, Any] = await resp.json()
                done = doc["counters"]["completed"]
                if done >= 7 and doc["lanes"]["busy"] == 3 and doc["upstream"]["loaded_models"]:
                    break
                await asyncio.sleep(0.05)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await proxy.stop()
    return doc, queue


def _compact(doc: dict[str, Any], *keys: str) -> str:
    return json.dumps({k: doc[k] for k in keys or tuple(doc)}, separators=(", ", ": "))


def readme_excerpt(doc: dict[str, Any]) -> str:
    """The short `/stats` excerpt the README shows, with this snapshot's values."""
    first = doc["warnings"][0] if doc["warnings"] else None
    verdict = {k: doc["verdict"][k] for k in ("kind", "explanation")}
    lines = [
        "{",
        f'  "verdict": {json.dumps(verdict)},',
        f'  "lanes": {_compact(doc["lanes"], "configured", "busy", "free")},',
        f'  "queue": {_compact(doc["queue"], "depth", "max_queue", "by_class")},',
        '  "counters": '
        + _compact(doc["counters"], "received", "admitted", "completed", "failed", "rejected")
        + ",",
        f'  "utilization": {_compact(doc["utilization"])},',
        '  "warnings": [',
    ]
    if first is not None:
        lines += [
            f'    {{"kind": {json.dumps(first["kind"])}, "count": {first["count"]},',
            f'     "hint": {json.dumps(first["hint"])}}}',
        ]
    return "\n".join([*lines, "  ]", "}"]) + "\n"


def _replace_block(text: str, fence: str, body: str) -> str:
    pattern = re.compile(rf"(```{fence}\n)(.*?)(```)", re.S)
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def main() -> None:
    """Record and write the snapshot, the frame and the docs examples."""
    configure_logging("error")
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(Path(tmp), OLLAMA_NUM_PARALLEL="2", **SIMULATOR)
        with simulator_process(env, Path(tmp) / "sim.log") as sim:
            doc, queue = asyncio.run(record(sim.url))
    text = json.dumps(doc, indent=2) + "\n"
    (DATA / "stats_snapshot.json").write_text(text, encoding="utf-8")
    (DATA / "queue_snapshot.json").write_text(json.dumps(queue, indent=2) + "\n", "utf-8")
    shown = frame(doc, queue)
    (DATA / "top_frame.txt").write_text(shown, encoding="utf-8")
    page = ROOT / "docs" / "stats.md"
    trimmed = "\n".join(line.rstrip() for line in shown.splitlines()).strip("\n") + "\n"
    updated = _replace_block(page.read_text(encoding="utf-8"), "json", text)
    page.write_text(_replace_block(updated, "text", trimmed), encoding="utf-8")
    readme = ROOT / "README.md"
    readme.write_text(
        _replace_block(readme.read_text(encoding="utf-8"), "json", readme_excerpt(doc)),
        encoding="utf-8",
    )
    print(f"recorded /stats with {doc['counters']['completed']} completed requests")


if __name__ == "__main__":
    main()
