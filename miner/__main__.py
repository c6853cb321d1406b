"""The `miner` command: run, status, export and retry-failed over one SQLite database."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import structlog

from miner.settings import MinerSettings
from miner.status import ExitStatus
from proxy.config import SettingsError, load_settings

__all__ = ["main"]

_RUN_ONLY = {"db"}  # flags every command takes


def _add_setting_flags(parser: argparse.ArgumentParser, *, only: set[str] | None = None) -> None:
    for name, info in MinerSettings.model_fields.items():
        if only is not None and name not in only:
            continue
        flag = "--" + name.replace("_", "-")
        default = info.get_default(call_default_factory=False)
        shown = "per-user data dir" if name == "db" else default
        helptext = f"{info.description or name} (env MINER_{name.upper()}, default {shown})"
        if name == "progress":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=helptext)
        else:
            parser.add_argument(flag, dest=name, metavar=name.upper(), help=helptext)


def _version() -> str:
    try:
        return importlib.metadata.version("ollama-lanes")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The full `miner` argument parser."""
    parser = argparse.ArgumentParser(
        prog="miner", description="Mine transcripts for claims, jargon, people and mental models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--config", type=Path, help="TOML config file (table [miner])")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="mine files or folders (resumes where it stopped)")
    run.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_setting_flags(run)
    retry = sub.add_parser("retry-failed", help="re-queue failed segments and mine them again")
    retry.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_setting_flags(retry)
    status = sub.add_parser("status", help="segments done, failed and pending per source")
    _add_setting_flags(status, only=_RUN_ONLY)
    export = sub.add_parser("export", help="write one record per segment with its items")
    export.add_argument("--format", choices=("jsonl", "json"), default="jsonl")
    export.add_argument("--out", type=Path, help="output file (default: stdout)")
    _add_setting_flags(export, only=_RUN_ONLY)
    return parser


def _settings(args: argparse.Namespace) -> MinerSettings:
    names = set(MinerSettings.model_fields)
    overrides = {k: v for k, v in vars(args).items() if k in names}
    return load_settings(MinerSettings, overrides, config_file=args.config)


def _configure_logging(level: str, stderr: TextIO) -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stderr),
        cache_logger_on_first_use=False,
    )


def _mine(args: argparse.Namespace, settings: MinerSettings, out: TextIO, err: TextIO) -> int:
    from miner.runner import run_miner
    from miner.summary import render_summary

    inputs: list[Path] = list(getattr(args, "inputs", []))
    retry = args.command == "retry-failed"
    summary = asyncio.run(run_miner(settings, inputs, requeue_failed=retry, progress_stream=err))
    if args.json:
        print(json.dumps(summary.as_dict() | {"db": str(settings.db)}, indent=2), file=out)
    else:
        print(render_summary(summary, db=str(settings.db)), file=out)
    if inputs and summary.input_errors and not summary.segments and not summary.skipped:
        return ExitStatus.USAGE  # nothing usable was given
    return ExitStatus.SUCCESS if summary.all_ok else ExitStatus.PARTIAL


def _status(settings: MinerSettings, out: TextIO) -> int:
    from miner.store import Store

    store = Store(settings.db)
    try:
        rows = store.status()
    finally:
        store.close()
    width = max([len(Path(r.path).name) for r in rows] + [6])
    print(f"{'source':<{width}}  {'format':<10} {'done':>6} {'failed':>6} {'pending':>7}", file=out)
    for r in rows:
        name = Path(r.path).name
        print(f"{name:<{width}}  {r.format:<10} {r.done:>6} {r.failed:>6} {r.pending:>7}", file=out)
    totals = [sum(getattr(r, k) for r in rows) for k in ("done", "failed", "pending")]
    print(f"{'total':<{width}}  {'':<10} {totals[0]:>6} {totals[1]:>6} {totals[2]:>7}", file=out)
    return ExitStatus.SUCCESS


def _export(args: argparse.Namespace, settings: MinerSettings, out: TextIO) -> int:
    from miner.store import Store

    store = Store(settings.db)
    try:
        records: list[dict[str, Any]] = list(store.export())
    finally:
        store.close()
    if args.format == "json":
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.out is None:
        out.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return ExitStatus.SUCCESS


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run `miner`; 0 all ok, 1 some segments failed, 2 bad usage, 130 on Ctrl-C."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = _settings(args)
        _configure_logging(settings.log_level, err)
        if args.command in ("run", "retry-failed"):
            return _mine(args, settings, out, err)
        if not settings.db.is_file():
            print(f"miner: no database at {settings.db}; `miner run` creates it", file=err)
            return ExitStatus.PARTIAL
        if args.command == "status":
            return _status(settings, out)
        return _export(args, settings, out)
    except SettingsError as exc:
        print(f"miner: {exc}", file=err)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("miner: interrupted; finished segments are saved, rerun to resume", file=err)
        return ExitStatus.CTRL_C
    except Exception as exc:
        if isinstance(exc, ExceptionGroup):  # from the worker pool: show the first cause
            exc = exc.exceptions[0]
        if args.debug:
            traceback.print_exc(file=err)
        print(f"miner: {type(exc).__name__}: {exc}", file=err)
        return ExitStatus.PARTIAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
