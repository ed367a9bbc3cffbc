"""Live write leases: the lease table, and the end-of-task check for agents without a write hook."""
