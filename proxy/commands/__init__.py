"""Subcommands of `lanes`: each module parses its flags, calls library code and prints."""
