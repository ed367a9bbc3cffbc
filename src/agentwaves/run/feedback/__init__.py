"""Feedback loops: gate baselines (JUnit), culprit search, repairs, revise and rebuilt waves."""
