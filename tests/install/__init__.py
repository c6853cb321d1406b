"""Tests of the daemon installers and `lanes doctor`."""
