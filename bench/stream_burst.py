"""How a 200-chunk stream's added time splits into first byte and relay, from 1 to 16 streams
started together: `python -m bench.stream_burst` prints a Markdown table (direct, `lanes
serve` and the floor in front of one simulator decoding 200 tokens/s, rounds interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from bench.contenders import SIM_MODEL, SimTiming, start_floor, start_lanes, start_simulator
from bench.figures import fmt_ms, median
from bench.overhead import Contender, _measure
from bench.overhead_plan import Cell, Plan, Sample
from bench.procs import stop_all
from bench.report import markdown_table

__all__ = ["main"]

CHUNKS = 200


async def _run(concurrencies: list[int], rounds: int, tmp: Path) -> list[str]:
    try:
        sim = await start_simulator(SimTiming(lanes=128, decode_tps=200.0), tmp)
        lanes = await start_lanes(sim.url, tmp, lanes=128)
        floor = await start_floor(sim.url, tmp)
        both = ("native", "v1")
        contenders = [
            Contender("direct", sim.url, SIM_MODEL, both, None),
            Contender("lanes serve", lanes.url, SIM_MODEL, both, lanes),
            Contender("floor", floor.url, SIM_MODEL, both, floor),
        ]
        plan = Plan(rounds, (1,), {1: 1}, 1, 1, CHUNKS)
        rows = []
        for concurrency in concurrencies:
            cell = Cell("native", True, concurrency, max(8, 2 * concurrency))
            found: dict[str, list[Sample]] = {c.name: [] for c in contenders}
            for round_no in range(rounds):
                turn = round_no % len(contenders)
                for contender in contenders[turn:] + contenders[:turn]:
                    found[contender.name].append(await _measure(contender, cell, plan))
            for name in ("lanes serve", "floor"):
                pairs = list(zip(found[name], found["direct"], strict=True))

                def added(attr: str, pairs: list[tuple[Sample, Sample]] = pairs) -> str:
                    return fmt_ms(median([getattr(m, attr) - getattr(d, attr) for m, d in pairs]))

                rows.append([str(concurrency), name, added("p50"), added("ttfb_p50"),
                             added("relay_p50")])  # fmt: skip
        header = ["streams at once", "contender", "added whole stream p50",
                  "added first byte p50", "added relay p50"]  # fmt: skip
        return markdown_table(header, rows)
    finally:
        await stop_all()


def main(argv: list[str] | None = None) -> int:
    """Run it and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.stream_burst", description=__doc__)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        table = asyncio.run(_run(args.concurrency, args.rounds, Path(tmp)))
    print("\n".join(table))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
