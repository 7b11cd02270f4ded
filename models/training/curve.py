"""What every training loop shares, whatever its array library: when to log and evaluate,
running means, timing that leaves evaluation out, the best test accuracy, and final metrics."""

import math
import time
from dataclasses import dataclass
from typing import Any

from models.training.reporting import Reporter


@dataclass(frozen=True)
class Cadence:
    max_steps: int
    log_every: int
    eval_every: int

    @classmethod
    def of(cls, spec: dict[str, Any]) -> "Cadence":
        """The schedule of a stored spec (what the API and the store read back)."""
        return cls(int(spec["max_steps"]), int(spec["log_every"]), int(spec["eval_every"]))

    @property
    def evaluations(self) -> int:
        """How many evaluations a whole run makes: at every `eval_every`-th step and at the last."""
        return self.max_steps // self.eval_every + (self.max_steps % self.eval_every != 0)

    def is_eval_step(self, step: int) -> bool:
        return step % self.eval_every == 0 or step == self.max_steps

    def is_log_step(self, step: int) -> bool:
        """A train point every `log_every` steps, and with every evaluation."""
        return step % self.log_every == 0 or self.is_eval_step(step)


class DataTimer:
    """Seconds spent preparing batches (sampling, indexing, normalising, augmenting), as the host sees them: on a
    GPU, the time to enqueue that work. `with timer:` around it; `take()` reads and restarts the sum."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> "DataTimer":
        self._started = time.perf_counter()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds += time.perf_counter() - self._started

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


class CurveRecorder:
    """Turns the loop's raw sums into curve points, progress and final metrics."""

    def __init__(self, cadence: Cadence, batch_size: int, reporter: Reporter) -> None:
        self.cadence, self.batch_size, self.reporter = cadence, batch_size, reporter
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.best_accuracy, self.best_step = -1.0, 0
        self.last: dict[str, float] = {}
        self.evaluated_images, self.evaluating_seconds = 0, 0.0  # the evaluations alone, for their speed
        # (step, training seconds) at the first train point: the steps after it run at the steady speed, the
        # first ones also choose kernels and take memory (a plan counts that time as start-up)
        self.first_point: tuple[int, float] | None = None
        self._tick = time.perf_counter()

    def train_point(
        self, step: int, loss_sum: float, correct: int, n_steps: int, n_images: int, data_seconds: float = 0.0
    ) -> None:
        """Report the running mean since the last train point (and the fraction of that stretch's training time
        spent preparing batches, `data_seconds` of it); stops the training clock."""
        now = time.perf_counter()
        stretch = now - self._tick
        self.train_seconds += stretch
        self._tick = now
        if self.first_point is None:
            self.first_point = (step, self.train_seconds)
        loss, accuracy = loss_sum / n_steps, correct / n_images
        finite = math.isfinite(loss)
        if finite:
            self.reporter.point(step, "train", loss, accuracy)
        data_wait = min(1.0, data_seconds / stretch) if stretch > 0 else None
        # the step reached, a diverged one too: the job shows the step its error names
        self.reporter.progress(step, step / self.train_seconds, step * self.batch_size / self.train_seconds, data_wait)
        if not finite:
            if self.reporter.loss_not_finite(step, loss):  # an alert rule stops it: the loop ends at its next check
                return
            raise FloatingPointError(f"training loss became {loss} at step {step}: lower the learning rate")
        self.last.update(train_loss=loss, train_accuracy=accuracy)

    def test_point(self, step: int, loss: float, accuracy: float, images: int, seconds: float) -> None:
        """A whole-test-set evaluation of `images` images that took `seconds`."""
        self.evaluated_images += images
        self.evaluating_seconds += seconds
        self.reporter.point(step, "test", loss, accuracy)
        self.last.update(test_loss=loss, test_accuracy=accuracy)
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_step = accuracy, step

    def resume_clock(self) -> None:
        """Call after logging and evaluation: what passed since the last train point was not training."""
        now = time.perf_counter()
        self.eval_seconds += now - self._tick
        self._tick = now

    def state(self) -> dict[str, object]:
        return {
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "best_accuracy": self.best_accuracy,
            "best_step": self.best_step,
            "last": dict(self.last),
            "evaluated_images": self.evaluated_images,
            "evaluating_seconds": self.evaluating_seconds,
            "first_point": list(self.first_point) if self.first_point else None,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.train_seconds, self.eval_seconds = state["train_seconds"], state["eval_seconds"]
        self.best_accuracy, self.best_step = state["best_accuracy"], state["best_step"]
        self.last = dict(state["last"])
        self.evaluated_images = int(state.get("evaluated_images", 0))
        self.evaluating_seconds = float(state.get("evaluating_seconds", 0.0))
        first = state.get("first_point")
        self.first_point = (int(first[0]), float(first[1])) if first else None
        self._tick = time.perf_counter()

    def final_metrics(self, steps_done: int) -> dict[str, float]:
        self.train_seconds += time.perf_counter() - self._tick
        self._tick = time.perf_counter()
        metrics = dict(self.last)
        if self.best_accuracy >= 0:
            metrics.update(best_test_accuracy=self.best_accuracy, best_step=float(self.best_step))
        rate = steps_done / self.train_seconds if self.train_seconds else 0.0
        metrics.update(
            steps=float(steps_done),
            train_seconds=self.train_seconds,
            eval_seconds=self.eval_seconds,
            steps_per_second=rate,
            images_per_second=rate * self.batch_size,
        )
        if self.first_point is not None and steps_done > self.first_point[0]:
            first_step, first_seconds = self.first_point
            if self.train_seconds > first_seconds:
                metrics["steady_steps_per_second"] = (steps_done - first_step) / (self.train_seconds - first_seconds)
        if self.evaluating_seconds > 0:
            metrics["eval_images_per_second"] = self.evaluated_images / self.evaluating_seconds
        return metrics
