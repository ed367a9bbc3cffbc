"""Confinement: bubblewrap argv, the path gate, the bounded process runner."""
