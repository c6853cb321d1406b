"""ollama-lanes: a fair-queue lane proxy, simulator and tooling for Ollama."""

__version__ = "0.1.0"
