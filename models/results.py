"""What training a job produces."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RunResult:
    steps_done: int
    stopped: bool  # ended early because the reporter asked it to stop
    metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # name -> array, for the model artifact
    artifact: bytes | None = None  # the packed model (models.artifacts), set by run_job on success
