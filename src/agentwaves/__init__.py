"""agentwaves: several AI coding agents on one git repository, in conflict-free waves."""

__version__ = "0.1.0"
