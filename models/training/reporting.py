"""How a training loop talks to whoever runs it, without knowing who that is."""

from typing import Literal, Protocol

Split = Literal["train", "test"]


class Reporter(Protocol):
    def point(self, step: int, split: Split, loss: float, accuracy: float) -> None:
        """One curve point: a train running mean or a whole-test-set evaluation."""

    def progress(
        self, step: int, steps_per_second: float, images_per_second: float, data_wait: float | None = None
    ) -> None:
        """Where training is and how fast it goes; `data_wait`: the fraction of the last stretch's training time
        spent preparing batches."""

    def should_stop(self) -> bool:
        """True when the job was cancelled or its worker is shutting down; checked between steps."""

    def checkpoint(self, step: int, state: bytes) -> None:
        """The full training state after `step` steps; every point up to `step` was reported before it."""

    def checkpoint_due(self) -> bool:
        """Whether a periodic checkpoint (every `checkpoint_every` steps) may be written now: an executor
        may space them out in time. The checkpoint of a stop is always written."""

    def loss_not_finite(self, step: int, loss: float) -> bool:
        """The training loss became NaN or infinite at `step`: True to stop the job as if asked to (an alert rule
        said so; the loop then stops at its next check), False to fail it."""


class InMemoryReporter:
    """Keeps every point, the last progress and every checkpoint in lists; never asks to stop.

    For benchmarks, tests and scripts that run a job in-process."""

    def __init__(self) -> None:
        self.points: list[tuple[int, str, float, float]] = []
        self.last_progress: tuple[int, float, float] | None = None
        self.checkpoints: list[tuple[int, bytes]] = []

    def point(self, step: int, split: Split, loss: float, accuracy: float) -> None:
        self.points.append((step, split, loss, accuracy))

    def progress(
        self, step: int, steps_per_second: float, images_per_second: float, data_wait: float | None = None
    ) -> None:
        self.last_progress = (step, steps_per_second, images_per_second)

    def should_stop(self) -> bool:
        return False

    def checkpoint(self, step: int, state: bytes) -> None:
        self.checkpoints.append((step, state))

    def checkpoint_due(self) -> bool:
        return True

    def loss_not_finite(self, step: int, loss: float) -> bool:
        return False
