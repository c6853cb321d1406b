"""Shared fixtures: each area keeps its fixtures in a tests/fixtures_*.py plugin module."""

pytest_plugins = ["tests.fixtures_sim", "tests.fixtures_proxy", "tests.fixtures_logs"]
