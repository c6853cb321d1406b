"""Run the pytest suite N times while every core is kept busy, then list what failed.

    python -m tests.repeat 10                  # what `make test-repeat N=10` runs
    python -m tests.repeat 3 -- tests/relay    # anything after `--` goes to pytest

A flaky test is one that races: it passes on an idle laptop and fails when the CPU is
shared. The hog (one spinning process per core) makes those races likely; the table at
the end names every test that failed at least once, with its failures out of N runs.
Each run writes a JUnit XML file and a log; the folder is kept when something failed.
Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

__all__ = ["RunResult", "cpu_hog", "failed_tests", "main", "node_id"]

ROOT = Path(__file__).resolve().parents[1]

# Spins until killed, or until its parent is gone (so no hog outlives a killed runner).
_SPIN = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


@contextmanager
def cpu_hog(cores: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Keep `cores` cores busy with spinning processes; they are killed on every way out."""
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(cores):
            hogs.append(subprocess.Popen([sys.executable, "-c", _SPIN]))
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def node_id(classname: str, name: str, root: Path = ROOT) -> str:
    """The pytest node id (`tests/a/test_b.py::TestC::test_d`) of a JUnit testcase."""
    parts = classname.split(".") if classname else []
    for cut in range(len(parts), 0, -1):
        path = Path(*parts[:cut]).with_suffix(".py")
        if (root / path).is_file():
            return "::".join([path.as_posix(), *parts[cut:], name])
    return "::".join([*parts, name]) if parts else name


def failed_tests(junit_xml: Path, root: Path = ROOT) -> list[str]:
    """The node ids of the testcases that failed or errored in one JUnit XML report."""
    failed: list[str] = []
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(node_id(case.get("classname", ""), case.get("name", ""), root))
    return failed


@dataclass
class RunResult:
    """One pytest run: its exit status, wall time, counts and the failed node ids."""

    index: int
    returncode: int
    seconds: float
    tests: int = 0
    failed: list[str] = field(default_factory=list)


def run_once(index: int, folder: Path, pytest_args: Sequence[str]) -> RunResult:
    """Run pytest once, its output in `run-<index>.log` and its report in `run-<index>.xml`."""
    report = folder / f"run-{index}.xml"
    log = folder / f"run-{index}.log"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    argv += [f"--junitxml={report}", *pytest_args]
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False)
    result = RunResult(index, proc.returncode, time.monotonic() - started)
    if report.is_file():
        result.failed = failed_tests(report)
        result.tests = sum(1 for _ in ET.parse(report).getroot().iter("testcase"))
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not result.failed):
        result.failed.append(f"<pytest exited with status {proc.returncode}; see {log.name}>")
    return result


def table(results: Sequence[RunResult]) -> str:
    """Every test that failed at least once, most failures first, as `failures/N`."""
    runs = len(results)
    counts = Counter(test for result in results for test in result.failed)
    if not counts:
        return f"No test failed in {runs} run(s)."
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    width = max(len("test"), *(len(test) for test, _ in rows))
    lines = [f"{'test':<{width}}  failures", f"{'-' * width}  --------"]
    lines += [f"{test:<{width}}  {count}/{runs}" for test, count in rows]
    return "\n".join(lines)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.repeat", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("runs", type=int, nargs="?", default=10, help="how many runs (default 10)")
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count() or 1, help="spinning processes (default: all)"
    )
    parser.add_argument("--keep", type=Path, help="folder for the logs and XML (kept)")
    parser.add_argument("pytest_args", nargs="*", help="after `--`: passed to pytest")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("runs must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    folder = args.keep or Path(tempfile.mkdtemp(prefix="lanes-repeat-"))
    folder.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    started = time.monotonic()
    print(f"{args.runs} run(s) of pytest with {args.cores} spinning process(es); logs in {folder}")
    try:
        with cpu_hog(args.cores):
            for index in range(1, args.runs + 1):
                result = run_once(index, folder, args.pytest_args)
                results.append(result)
                verdict = f"{len(result.failed)} failed" if result.failed else "all passed"
                print(
                    f"run {index}/{args.runs}: {result.tests} tests, {verdict}, "
                    f"{result.seconds:.0f} s",
                    flush=True,
                )
    except KeyboardInterrupt:
        print(f"interrupted after {len(results)} run(s)")
    total = time.monotonic() - started
    print()
    print(table(results))
    print(f"\n{len(results)} run(s) in {total / 60:.1f} min ({total:.0f} s)")
    failed = any(result.failed for result in results)
    if failed or args.keep or len(results) < args.runs:
        print(f"logs and JUnit XML: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed or len(results) < args.runs else 0


if __name__ == "__main__":
    sys.exit(main())
