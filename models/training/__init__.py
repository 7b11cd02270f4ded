"""Training: one loop driver (`loop.py`) and the backends it drives (NumPy, torch), with what they
need: curve bookkeeping, reporting, batch sampling, optimisers and schedules, augmentation."""
