"""The NumPy backend of the training loop: the assignment's hand-written forward, backward and SGD
step, whole-test-set evaluation, and exact checkpoints as one .npz (no pickle)."""

import io
import json
from typing import Any

import numpy as np

from models.data.arrays import ImageArrays
from models.data.preprocessing import FlatNormalizer, Normalization
from models.errors import JobError
from models.networks.numpy_mlp import MLP
from models.networks.numpy_modules import softmax_cross_entropy
from models.training.curve import DataTimer
from models.training.sampler import EpochSampler

EVAL_BATCH = 2000


class NumpyMLPBackend:
    def __init__(
        self, model: MLP, arrays: ImageArrays, norm: Normalization, batch_size: int, learning_rate: float, seed: int
    ) -> None:
        self.model, self.learning_rate = model, learning_rate
        self.train_rows = arrays.train_x.reshape(len(arrays.train_x), -1)  # (N, 3072) uint8, a view
        self.train_y = arrays.train_y
        self.test_rows = arrays.test_x.reshape(len(arrays.test_x), -1)
        self.test_y = arrays.test_y
        self.normalize = FlatNormalizer(norm, model.dtype)
        self.sampler = EpochSampler(len(self.train_y), batch_size, seed)
        self.loss_sum, self.correct, self.steps, self.images = 0.0, 0, 0, 0
        self.data_timer = DataTimer()

    def train_step(self) -> None:
        with self.data_timer:
            idx = self.sampler.next()
            x, y = self.normalize(self.train_rows[idx]), self.train_y[idx]
        logits = self.model.forward(x)
        loss, _, dlogits = softmax_cross_entropy(logits, y)
        self.model.backward(dlogits)
        self.model.sgd_step(self.learning_rate)
        self.loss_sum += loss
        self.correct += int((logits.argmax(1) == y).sum())
        self.steps += 1
        self.images += len(y)

    def take_data_seconds(self) -> float:
        return self.data_timer.take()

    def take_running(self) -> tuple[float, int, int, int]:
        running = (self.loss_sum, self.correct, self.steps, self.images)
        self.loss_sum, self.correct, self.steps, self.images = 0.0, 0, 0, 0
        return running

    @property
    def test_size(self) -> int:
        return len(self.test_y)

    def evaluate(self) -> tuple[float, float]:
        loss_sum, correct = 0.0, 0
        for start in range(0, len(self.test_y), EVAL_BATCH):
            y = self.test_y[start : start + EVAL_BATCH]
            logits = self.model.forward(self.normalize(self.test_rows[start : start + EVAL_BATCH]))
            loss, _, _ = softmax_cross_entropy(logits, y)
            loss_sum += loss * len(y)
            correct += int((logits.argmax(1) == y).sum())
        return loss_sum / len(self.test_y), correct / len(self.test_y)

    def capture(self, loop_state: dict[str, Any]) -> bytes:
        """The whole training state as one .npz: weights, batch order, the RNG, the curve so far."""
        sampler_meta, order = self.sampler.state()
        meta = {
            "loop": loop_state,
            "sampler": sampler_meta,
            "running": [self.loss_sum, self.correct, self.steps, self.images],
        }
        buffer = io.BytesIO()
        arrays: dict[str, np.ndarray] = {"order": order, "meta": np.array(json.dumps(meta)), **self.model.state_dict()}
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    def restore(self, checkpoint: bytes) -> dict[str, Any]:
        try:
            with np.load(io.BytesIO(checkpoint), allow_pickle=False) as npz:
                meta = json.loads(str(npz["meta"]))
                for name, value in self.model.state_dict().items():
                    value[...] = npz[name]
                order = npz["order"]
            self.sampler.load_state(meta["sampler"], order)
            self.loss_sum, self.correct, self.steps, self.images = meta["running"]
        except (OSError, KeyError, ValueError) as exc:
            raise JobError(f"the job's checkpoint cannot be read ({exc}); resubmit the job") from exc
        return dict(meta["loop"])
