"""Learning only, grouped by role: `networks/`, `training/`, `data/`, `kinds/` (one module per model
kind: spec, build, train, load), `prediction/`, `artifacts.py` (the model file) and `run.py` (one
job). Imports nothing else of this project: no SQL, no HTTP, no dispatch."""
