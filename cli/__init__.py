"""The `cifar-jobs` command: a client of the service's HTTP API (nothing else of this project)."""
