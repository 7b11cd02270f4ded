"""What a run reads besides its spec, and what training a job produces."""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.artifacts import ModelArtifact


@dataclass(frozen=True)
class DataSource:
    """Where a run finds its data sets (and weights files), and whether it may download what is missing."""

    data_dir: Path
    download: bool = False


@dataclass(frozen=True)
class StartFrom:
    """Where a run starts: a checkpoint of this job (resume), or an earlier job's model (init_from_job)."""

    checkpoint: bytes | None = None
    init: ModelArtifact | None = None
    init_job: int | None = None


@dataclass
class RunResult:
    steps_done: int
    stopped: bool  # ended early because the reporter asked it to stop
    metrics: dict[str, float] = field(default_factory=dict)
    runtime: dict[str, str] = field(default_factory=dict)  # device, precision, memory_format it trained with
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # name -> array, for the model artifact
    artifact: bytes | None = None  # the packed model (models.artifacts), set by run_job (also for a stopped run)

    def job_metrics(self) -> dict[str, float | str]:
        """The metrics as stored on the job: the numbers, and where and how it trained."""
        return {**self.metrics, **self.runtime}
