"""Bringing a run back: its state in line with git after a crash (recovery), its recorded commits checked
against git before a resume (verify)."""
