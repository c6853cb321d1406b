"""Fitting the machine: service plans, their executor, platform facts, doctor, tune, config."""
