"""A simulated Ollama: the same HTTP API, scheduler and timing, with no model behind it."""
