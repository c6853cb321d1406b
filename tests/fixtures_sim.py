"""Fixtures that start the simulated Ollama on port 0."""
