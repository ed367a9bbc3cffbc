"""Durability: the run's atomic state file, its event log, crash points for tests."""
