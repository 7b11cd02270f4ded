"""Processes that run together: `make serve` (the API and its helpers) and `python -m workers --concurrency N`."""
