"""tests/repeat.py, the flakiness check: JUnit test cases back to node ids, the table."""

from __future__ import annotations

from pathlib import Path

from tests.repeat import ROOT, RunResult, failed_tests, node_id, table

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.relay.test_gate.TestLaneGate" name="test_a" time="0.1"/>
<testcase classname="tests.relay.test_gate.TestLaneGate" name="test_b[x]" time="0.1">
<failure message="assert 1 == 2">boom</failure></testcase>
<testcase classname="tests.test_demo" name="test_c" time="0.1"><error message="e"/></testcase>
<testcase classname="tests.test_demo" name="test_d" time="0.1"><skipped message="s"/></testcase>
</testsuite></testsuites>
"""


def test_node_ids_follow_the_files() -> None:
    """The dotted classname is split where the test file ends; the rest are classes."""
    assert (
        node_id("tests.relay.test_gate.TestLaneGate", "test_b[x]")
        == "tests/relay/test_gate.py::TestLaneGate::test_b[x]"
    )
    assert node_id("tests.test_demo", "test_c") == "tests/test_demo.py::test_c"
    assert node_id("", "collection") == "collection"
    assert (ROOT / "tests" / "repeat.py").is_file()


def test_failures_and_errors_are_listed_and_counted(tmp_path: Path) -> None:
    """Failed and errored cases count, passed and skipped ones do not; most failures first."""
    report = tmp_path / "run.xml"
    report.write_text(JUNIT, encoding="utf-8")
    failed = failed_tests(report)
    assert failed == [
        "tests/relay/test_gate.py::TestLaneGate::test_b[x]",
        "tests/test_demo.py::test_c",
    ]
    runs = [
        RunResult(1, 1, 1.0, 4, failed),
        RunResult(2, 1, 1.0, 4, failed[1:]),
        RunResult(3, 0, 1.0),
    ]
    lines = table(runs).splitlines()
    assert lines[2].split() == ["tests/test_demo.py::test_c", "2/3"]
    assert lines[3].split() == ["tests/relay/test_gate.py::TestLaneGate::test_b[x]", "1/3"]
    assert table(runs[2:]) == "No test failed in 1 run(s)."
