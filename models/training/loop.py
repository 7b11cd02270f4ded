"""The one training-loop driver: the schedule every backend shares.

Step; every `log_every` steps a train point (running means since the last one), every
`eval_every` steps (and at the end) a whole-test-set evaluation; a checkpoint every
`checkpoint_every` steps; a stop check between steps (a stopped job checkpoints, so it can
resume exactly). The backend (NumPy or torch) supplies the step, the evaluation and its state.
"""

import time
from dataclasses import dataclass
from typing import Any, Protocol

from models.training.curve import Cadence, CurveRecorder
from models.training.reporting import Reporter


class Backend(Protocol):
    def train_step(self) -> None:
        """One forward, backward and update on the next mini-batch; adds to the running sums."""

    def take_running(self) -> tuple[float, int, int, int]:
        """(loss sum, correct, steps, images) since the last call, and start the sums again."""

    def take_data_seconds(self) -> float:
        """Seconds spent preparing batches since the last call (a `DataTimer`'s `take()`)."""

    @property
    def test_size(self) -> int:
        """Images in the test set."""

    def evaluate(self) -> tuple[float, float]:
        """Mean loss and accuracy over the whole test set."""

    def capture(self, loop_state: dict[str, Any]) -> bytes:
        """The backend's whole state (weights, optimiser, sampler, RNGs, running sums) and `loop_state`."""

    def restore(self, checkpoint: bytes) -> dict[str, Any]:
        """Load a `capture`d state; returns its `loop_state`. Raises JobError when it cannot be read."""


@dataclass(frozen=True)
class LoopPlan:
    max_steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    batch_size: int


@dataclass
class LoopResult:
    steps_done: int
    stopped: bool  # True when should_stop() ended the loop early
    metrics: dict[str, float]


def run_loop(
    backend: Backend,
    plan: LoopPlan,
    reporter: Reporter,
    resume: bytes | None = None,
    evaluate_first: bool = False,
) -> LoopResult:
    """Train for `plan.max_steps` steps (continuing from `resume`, a checkpoint, when given),
    reporting curve points, progress and checkpoints. `evaluate_first`: a network that starts from
    trained weights is evaluated at step 0 too (not again when resuming)."""
    cadence = Cadence(plan.max_steps, plan.log_every, plan.eval_every)
    curve = CurveRecorder(cadence, plan.batch_size, reporter)
    step, stopped = 0, False
    if resume is not None:
        loop_state = backend.restore(resume)
        step = int(loop_state["step"])
        curve.load_state(loop_state["curve"])
    elif evaluate_first:
        started = time.perf_counter()
        loss, accuracy = backend.evaluate()
        curve.test_point(0, loss, accuracy, backend.test_size, time.perf_counter() - started)
        curve.resume_clock()

    def checkpoint() -> None:
        reporter.checkpoint(step, backend.capture({"step": step, "curve": curve.state()}))

    while step < plan.max_steps:
        backend.train_step()
        step += 1
        if cadence.is_log_step(step):
            curve.train_point(step, *backend.take_running(), data_seconds=backend.take_data_seconds())
            if cadence.is_eval_step(step):
                started = time.perf_counter()
                loss, accuracy = backend.evaluate()
                curve.test_point(step, loss, accuracy, backend.test_size, time.perf_counter() - started)
            curve.resume_clock()
        if step % plan.checkpoint_every == 0 and step < plan.max_steps and reporter.checkpoint_due():
            checkpoint()
            curve.resume_clock()
        if reporter.should_stop() and step < plan.max_steps:
            checkpoint()
            stopped = True
            break
    return LoopResult(step, stopped, dict(curve.final_metrics(step)))
