"""Benchmarks of ollama-lanes against the simulator: `make bench` writes BENCHMARKS.md."""
