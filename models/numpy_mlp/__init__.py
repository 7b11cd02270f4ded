"""The assignment's MLP with every gradient written by hand in NumPy (no torch anywhere here)."""
