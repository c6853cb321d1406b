"""`python -m bench.run [--smoke]`: run every scenario and write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import fairness, lanes_busy, overhead, queue_scale, work_share
from bench.contenders import litellm_version
from bench.machine import describe_machine, nginx_version
from bench.procs import stop_all
from bench.report import Context, Section, write_report

__all__ = ["SCENARIOS", "main"]

Scenario = Callable[[Context], Awaitable[Section]]

SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "overhead": ("1. Overhead", overhead.run),
    "lanes": ("2. Lanes kept busy", lanes_busy.run),
    "fairness": ("3. Fairness", fairness.run),
    "queue": ("4. Scale of the queue", queue_scale.run),
    "work_share": ("5. Fair share by work", work_share.run),
}
ALL_CONTENDERS = ("nginx", "litellm")
REPO = Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny counts, a few seconds each")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="report path")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"scenarios to run: {','.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--contenders",
        default=",".join(ALL_CONTENDERS),
        help="third-party contenders for scenario 1 (nginx,litellm); empty for none",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never install nginx or LiteLLM (the default in --smoke)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


async def _run_one(key: str, title: str, scenario: Scenario, ctx: Context) -> Section:
    begin = time.monotonic()
    try:
        return await scenario(ctx)
    except Exception as exc:
        ctx.log("".join(traceback.format_exception(exc)))
        section = Section(key, title, error=f"{type(exc).__name__}: {exc}"[:500])
        section.seconds = time.monotonic() - begin
        return section


async def run_all(args: argparse.Namespace, tmp: Path) -> list[Section]:
    """Run the selected scenarios one after the other."""

    def log(line: str) -> None:
        if not args.quiet:
            print(f"[bench {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    wanted = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = [k for k in wanted if k not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}")
    ctx = Context(
        smoke=args.smoke,
        tmp=tmp,
        install=not (args.smoke or args.no_install),
        contenders=frozenset(c.strip() for c in args.contenders.split(",") if c.strip()),
        log=log,
    )
    sections: list[Section] = []
    if args.smoke:  # smoke numbers mean nothing, so the scenarios may share the machine
        jobs = [_run_one(key, *SCENARIOS[key], ctx) for key in wanted]
        sections = list(await asyncio.gather(*jobs))
    for key in wanted if not args.smoke else []:
        title, scenario = SCENARIOS[key]
        log(f"scenario {title}")
        sections.append(await _run_one(key, title, scenario, ctx))
        await _stop_leftovers(ctx)
    await _stop_leftovers(ctx)
    return sections


async def _stop_leftovers(ctx: Context) -> None:
    left = await stop_all()
    if left:
        ctx.log(f"stopped {left} process(es) a scenario left running")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit 1 when a scenario failed (targets never change the status)."""
    args = _parser().parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    base = REPO / "bench" / "results" / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as scratch:
        sections = asyncio.run(run_all(args, Path(scratch)))
    extra = {
        "nginx": nginx_version("nginx") or "not installed",
        "LiteLLM": litellm_version() or "not installed",
    }
    command = "make bench" if not args.smoke else "python -m bench.run --smoke"
    write_report(
        args.out,
        sections,
        describe_machine(extra),
        started=started,
        smoke=args.smoke,
        command=command,
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
