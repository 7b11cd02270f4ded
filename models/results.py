"""What training a job produces."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RunEnv:
    """Where a run finds its data, and whether it may download what is missing."""

    data_dir: Path
    download: bool = False
    resume: bytes | None = None  # a checkpoint the run continues from


@dataclass
class RunResult:
    steps_done: int
    stopped: bool  # ended early because the reporter asked it to stop
    metrics: dict[str, float] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # name -> array, for the model artifact
    artifact: bytes | None = None  # the packed model (models.artifacts), set by run_job on success
