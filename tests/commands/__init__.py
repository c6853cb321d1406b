"""Tests of the `lanes` subcommand modules."""
