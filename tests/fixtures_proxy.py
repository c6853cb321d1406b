"""Fixtures that start the lane proxy on port 0."""
