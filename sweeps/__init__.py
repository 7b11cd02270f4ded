"""Hyperparameter sweeps: the request, the search (Optuna, rebuilt from the store) and the driver."""
