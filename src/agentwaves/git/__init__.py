"""Git plumbing that knows nothing of runs: hardened git calls, merges, worktrees, stacked bases."""
