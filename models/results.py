"""What training a job produces."""

from dataclasses import dataclass, field


@dataclass
class RunResult:
    steps_done: int
    stopped: bool  # ended early because the reporter asked it to stop
    metrics: dict[str, float] = field(default_factory=dict)
