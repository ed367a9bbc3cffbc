"""Looking back at runs: status and review data, the report, land."""
