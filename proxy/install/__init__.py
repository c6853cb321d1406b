"""Fitting the machine: launchd and systemd plans, platform facts, doctor, tune, config edits."""
