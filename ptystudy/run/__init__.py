"""A study run's directory: its paths, its lock, the outcome ledger and the manifest."""
