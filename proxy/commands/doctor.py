"""`lanes doctor`: check Ollama, NUM_PARALLEL, the lane map, ports and the proxy; say the fixes."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from proxy.install.checkup import gather_doctor_facts
from proxy.install.doctor import Finding, diagnose
from proxy.install.doctor_lanes import LaneMap, lane_map, render_lane_map
from proxy.install.executor import make_target
from proxy.install.lanes_exe import find_lanes_exe
from proxy.install.platform_facts import default_urls
from proxy.machine.machine import Machine
from proxy.status import ExitStatus

__all__ = ["doctor", "lane_map_json", "register", "render", "run_doctor"]

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def render(findings: list[Finding], out: TextIO, view: LaneMap | None = None) -> None:
    """The lane map, then the findings in plain words, one per line, each fix indented below."""
    if view is not None:
        for line in render_lane_map(view):
            print(line, file=out)
    for finding in findings:
        print(f"[{_MARKS[finding.severity]}] {finding.summary}", file=out)
        if finding.fix and finding.severity != "ok":
            print(f"       fix: {finding.fix}", file=out)
    failed = sum(1 for f in findings if f.severity == "fail")
    print(f"{failed} problem(s) need fixing." if failed else "All good.", file=out)


def lane_map_json(view: LaneMap) -> dict[str, Any]:
    """The lane map as data: the host, its cap and NUM_PARALLEL, and each model's lanes."""
    return {
        "upstream": view.upstream,
        "url": view.url,
        "cap": view.cap,
        "num_parallel": dataclasses.asdict(view.parallel),
        "models": {
            row.model: {k: v for k, v in dataclasses.asdict(row).items() if k != "model"}
            for row in view.rows
        },
    }


async def doctor(args: argparse.Namespace, machine: Machine, out: TextIO = sys.stdout) -> int:
    """Gather, diagnose, print; non-zero when something needs fixing."""
    proxy_url, ollama_url = default_urls(machine)
    proxy_url = (args.url or proxy_url).rstrip("/")
    ollama_url = (args.ollama or ollama_url).rstrip("/")
    target = make_target(machine, find_lanes_exe(machine) or Path("lanes"))
    facts = await gather_doctor_facts(machine, target, ollama_url, proxy_url)
    findings = diagnose(facts)
    view = lane_map(facts)
    failed = any(f.severity == "fail" for f in findings)
    if args.json:
        body = {
            "ok": not failed,
            "findings": [dataclasses.asdict(f) for f in findings],
            "lane_map": lane_map_json(view),
        }
        print(json.dumps(body, indent=2), file=out)
    else:
        render(findings, out, view if facts.ollama.version is not None else None)
    return ExitStatus.ERROR if failed else ExitStatus.SUCCESS


def run_doctor(args: argparse.Namespace, machine: Machine, out: TextIO = sys.stdout) -> int:
    """`lanes doctor` from synchronous code."""
    return asyncio.run(doctor(args, machine, out))


def register(subparsers: Any) -> None:
    """Add `doctor` to the `lanes` parser."""
    cmd = subparsers.add_parser("doctor", help="check the setup and explain how to fix it")
    cmd.add_argument("--json", action="store_true", help="print the findings and the lane map")
    cmd.add_argument("--url", help="the proxy's URL (default: from the config file)")
    cmd.add_argument("--ollama", metavar="URL", help="Ollama's URL (default: the upstream)")
    cmd.set_defaults(func=lambda args: run_doctor(args, Machine.current()))
