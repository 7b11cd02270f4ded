"""Training a `numpy_mlp` job: the assignment's loop, in NumPy only."""

import io
import json

import numpy as np

from models.curve import Cadence, CurveRecorder
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.errors import JobError
from models.numpy_mlp.mlp import MLP
from models.numpy_mlp.modules import softmax_cross_entropy
from models.reporting import Reporter
from models.results import RunEnv, RunResult
from models.specs import CIFAR_INPUTS, NumpyMLPSpec

EVAL_BATCH = 2000


class FlatBatches:
    """Flattened, normalised float batches from the uint8 images, drawn epoch by epoch without replacement."""

    def __init__(self, images: np.ndarray, norm: Normalization, dtype: type, seed: int) -> None:
        self.images = images.reshape(len(images), -1)  # (N, 3072) uint8, a view
        self.mean: np.ndarray = np.broadcast_to(norm.mean, (3, 32, 32)).reshape(-1).astype(dtype)
        self.inv_std: np.ndarray | None = (
            None
            if norm.kind == "assignment"
            else (1 / np.broadcast_to(norm.std, (3, 32, 32))).reshape(-1).astype(dtype)
        )
        self.dtype = dtype
        self.rng = np.random.default_rng(seed)
        self.order = np.empty(0, dtype=np.int64)
        self.position = 0

    def normalize(self, rows: np.ndarray) -> np.ndarray:
        out = np.subtract(rows, self.mean, dtype=self.dtype)
        if self.inv_std is not None:
            out *= self.inv_std
        return out

    def next_indices(self, batch_size: int) -> np.ndarray:
        parts = []
        while batch_size > 0:
            if self.position >= len(self.order):
                self.order = self.rng.permutation(len(self.images))
                self.position = 0
            take = self.order[self.position : self.position + batch_size]
            self.position += len(take)
            batch_size -= len(take)
            parts.append(take)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def evaluate(model: MLP, images: np.ndarray, labels: np.ndarray, batches: FlatBatches) -> tuple[float, float]:
    flat = images.reshape(len(images), -1)
    loss_sum, correct = 0.0, 0
    for start in range(0, len(labels), EVAL_BATCH):
        y = labels[start : start + EVAL_BATCH]
        logits = model.forward(batches.normalize(flat[start : start + EVAL_BATCH]))
        loss, _, _ = softmax_cross_entropy(logits, y)
        loss_sum += loss * len(y)
        correct += int((logits.argmax(1) == y).sum())
    return loss_sum / len(labels), correct / len(labels)


def capture(step: int, model: MLP, batches: FlatBatches, curve: CurveRecorder, running: dict) -> bytes:
    """The whole training state as one .npz: weights, batch order, the RNG, the curve so far."""
    meta = {
        "step": step,
        "rng": batches.rng.bit_generator.state,
        "position": batches.position,
        "curve": curve.state(),
        "running": running,
    }
    buffer = io.BytesIO()
    arrays = {"order": batches.order, "meta": np.array(json.dumps(meta)), **model.state_dict()}
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def restore(data: bytes, model: MLP, batches: FlatBatches, curve: CurveRecorder) -> dict:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            for name, value in model.state_dict().items():
                value[...] = npz[name]
            batches.order = npz["order"]
    except (OSError, KeyError, ValueError) as exc:
        raise JobError(f"the job's checkpoint cannot be read ({exc}); resubmit the job") from exc
    batches.rng.bit_generator.state = meta["rng"]
    batches.position = meta["position"]
    curve.load_state(meta["curve"])
    return meta  # type: ignore[no-any-return]


def train_numpy_mlp(
    spec: NumpyMLPSpec, arrays: ImageArrays, norm: Normalization, reporter: Reporter, env: RunEnv
) -> RunResult:
    dtype = np.float64 if spec.dtype == "float64" else np.float32
    model = MLP(CIFAR_INPUTS, list(spec.hidden_units), arrays.n_classes, seed=spec.seed, dtype=dtype)
    batches = FlatBatches(arrays.train_x, norm, dtype, spec.seed)
    cadence = Cadence(spec.max_steps, spec.log_every, spec.eval_every)
    curve = CurveRecorder(cadence, spec.batch_size, reporter)
    loss_sum, correct, steps_since_log, images_since_log = 0.0, 0, 0, 0
    step, stopped = 0, False
    if env.resume is not None:
        meta = restore(env.resume, model, batches, curve)
        step = meta["step"]
        loss_sum, correct, steps_since_log, images_since_log = meta["running"]

    def checkpoint() -> None:
        running = [loss_sum, correct, steps_since_log, images_since_log]
        reporter.checkpoint(step, capture(step, model, batches, curve, running))  # type: ignore[arg-type]

    while step < spec.max_steps:
        # forward / backward / step
        idx = batches.next_indices(spec.batch_size)
        x, y = batches.normalize(batches.images[idx]), arrays.train_y[idx]
        logits = model.forward(x)
        loss, _, dlogits = softmax_cross_entropy(logits, y)
        model.backward(dlogits)
        model.sgd_step(spec.learning_rate)
        step += 1
        loss_sum += loss
        correct += int((logits.argmax(1) == y).sum())
        steps_since_log += 1
        images_since_log += len(y)
        # log / evaluate / checkpoint
        if cadence.is_log_step(step):
            curve.train_point(step, loss_sum, correct, steps_since_log, images_since_log)
            loss_sum, correct, steps_since_log, images_since_log = 0.0, 0, 0, 0
            if cadence.is_eval_step(step):
                curve.test_point(step, *evaluate(model, arrays.test_x, arrays.test_y, batches))
            curve.resume_clock()
        if step % spec.checkpoint_every == 0 and step < spec.max_steps:
            checkpoint()
            curve.resume_clock()
        # stop check: a stopped job keeps its state, so that it can resume
        if reporter.should_stop() and step < spec.max_steps:
            checkpoint()
            stopped = True
            break
    metrics = curve.final_metrics(step)
    metrics["device"] = "cpu"  # type: ignore[assignment]
    return RunResult(step, stopped, metrics, weights=model.state_dict())
