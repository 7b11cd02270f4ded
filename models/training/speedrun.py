"""Training and prediction of the `speedrun` kind (models.kinds.speedrun), driven by the shared loop.

The data stays in memory as uint8. Each epoch's plan (the order, every image's shift, and which
images are mirrored) is a pure function of (seed, epoch), so a checkpoint needs only the step to
continue exactly; whole batches are normalised, padded, shifted and mirrored with one gather.
"""

import io
import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.artifacts import ModelArtifact
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.errors import JobError
from models.kinds.speedrun import SpeedrunSpec
from models.networks.speedrun import SpeedrunNet, whitening_filters
from models.training.curve import DataTimer
from models.training.init_weights import matched_weights
from models.training.loop import LoopPlan, run_loop
from models.training.precision import bf16_is_fast_on_cpu
from models.training.reporting import Reporter
from models.training.results import RunResult, StartFrom
from models.training.torch_backend import RunningSums, numpy_state_dict
from models.training.torch_data import DeviceData, TorchNormalizer
from models.training.torch_device import resolve_device, seed_everything
from models.training.torch_setup import EVAL_IMAGES_PER_BATCH, use_bf16

log = logging.getLogger(__name__)
LOOKAHEAD_EVERY = 5
WHITENING_IMAGES = 5000  # the paper fits the whitening on 5,000 training images
FLIP_STREAM = 2**32  # the seed-sequence entry of the first epoch's flips (epochs use 0, 1, ...)


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    """Full batches per epoch (the shuffle's remainder is left out, as in the paper); at least one."""
    return max(1, n_images // batch_size)


@dataclass(frozen=True)
class EpochPlan:
    order: np.ndarray  # the images of this epoch, in order
    shifts: np.ndarray  # (N, 2) each image's (dy, dx) offset into its padded copy, 0 .. 2 * translate
    flips: np.ndarray  # (N,) bool: mirror this image in this epoch


def epoch_plan(n_images: int, seed: int, epoch: int, translate: int, flip: str) -> EpochPlan:
    """The same (seed, epoch) always gives the same plan: resuming needs no sampler state."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n_images)
    shifts = rng.integers(0, 2 * translate + 1, size=(n_images, 2))
    if flip == "none":
        flips = np.zeros(n_images, dtype=bool)
    elif flip == "random":
        flips = rng.random(n_images) < 0.5
    else:  # alternating: a random half in the first epoch, then every image the other way each epoch
        first = np.random.default_rng([seed, FLIP_STREAM]).random(n_images) < 0.5
        flips = first ^ bool(epoch % 2)
    return EpochPlan(order, shifts, flips)


def shift_and_mirror(x: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor, translate: int) -> torch.Tensor:
    """Each image of `x` (N, C, H, W) cut from its reflect-padded copy at `shifts` (N, 2), mirrored where
    `flips` (N,); one gather for the whole batch, channels-last out."""
    n, _, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (translate,) * 4, mode="reflect") if translate else x
    rows = shifts[:, :1] + torch.arange(h, device=dev)  # (N, H)
    cols = shifts[:, 1:] + torch.arange(w, device=dev)  # (N, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=dev)[:, None, None]
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C): indexed dims come first
    return out.permute(0, 3, 1, 2)


def tta_logits(model: nn.Module, x: torch.Tensor, level: int) -> torch.Tensor:
    """The paper's test-time augmentation: level 1 averages the image and its mirror; level 2 also the
    two copies shifted one pixel up-left and down-right (half the weight: 6 views in all)."""

    def mirrored(views: torch.Tensor) -> torch.Tensor:
        plain: torch.Tensor = model(views).float()
        if level == 0:
            return plain
        flipped: torch.Tensor = model(views.flip(-1)).float()
        return 0.5 * (plain + flipped)

    logits = mirrored(x)
    if level < 2:
        return logits
    h, w = x.shape[2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    up_left, down_right = padded[:, :, :h, :w], padded[:, :, 2:, 2:]
    return 0.5 * logits + 0.25 * (mirrored(up_left) + mirrored(down_right))


class Lookahead:
    """A slow copy of the weights and batch-norm statistics; every few steps the network is pulled
    towards it and takes its value (the paper's Lookahead, with a weight that grows as progress^3)."""

    def __init__(self, model: nn.Module) -> None:
        self.slow = {name: value.detach().clone() for name, value in model.state_dict().items()
                     if value.is_floating_point()}  # fmt: skip

    @torch.no_grad()
    def pull(self, model: nn.Module, keep: float) -> None:
        current = model.state_dict()
        for name, slow in self.slow.items():
            slow.lerp_(current[name], 1 - keep)
            current[name].copy_(slow)


def lookahead_keep(step: int, max_steps: int) -> float:
    return 0.95**LOOKAHEAD_EVERY * (step / max_steps) ** 3


def triangle(step: int, max_steps: int, start: float = 0.2, peak: float = 1.0, end: float = 0.07) -> float:
    """The learning-rate factor: linear from `start` to `peak` at 23% of the steps, then down to `end`."""
    peak_at = int(0.23 * max_steps)
    return float(np.interp(step, [0, peak_at, max_steps], [start, peak, end]))


class SpeedrunBackend:
    """The `speedrun` kind's step, evaluation and state for `models.training.loop.run_loop`."""

    def __init__(
        self, model: SpeedrunNet, data: DeviceData, spec: SpeedrunSpec, autocast_dtype: torch.dtype | None
    ) -> None:
        self.model, self.data, self.spec = model, data, spec
        self.runnable: nn.Module = torch.compile(model) if spec.compile else model  # type: ignore[assignment]
        self.autocast_dtype = autocast_dtype
        n = len(data.train_y)
        self.batch_size = min(spec.batch_size, n)
        self.per_epoch = steps_per_epoch(n, self.batch_size)
        self.optimizer, self.scheduler = self._optimizer()
        self.lookahead = Lookahead(model) if spec.lookahead else None
        self.step = 0
        self._plan: tuple[int, EpochPlan] | None = None
        self.running = RunningSums(data.device)
        self.data_timer = DataTimer()
        model.train()

    def _optimizer(self) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        """The paper's units: the loss is summed over the batch, so the step per image is the rate per 1,024
        images over 1,024 x (1 + 1 / (1 - momentum)); the decay is divided by each group's rate so that
        the decay per step is the same for both groups."""
        spec, model = self.spec, self.model
        per_image = 1024 * (1 + 1 / (1 - spec.momentum))
        lr = spec.learning_rate / per_image
        decay = spec.weight_decay * self.batch_size / per_image
        biases = model.norm_biases()
        bias_ids = {id(p) for p in biases}
        others = [p for p in model.parameters() if p.requires_grad and id(p) not in bias_ids]
        bias_lr = lr * spec.bias_scaler
        optimizer = torch.optim.SGD(
            [{"params": biases, "lr": bias_lr, "weight_decay": decay / bias_lr},
             {"params": others, "lr": lr, "weight_decay": decay / lr}],
            momentum=spec.momentum, nesterov=spec.momentum > 0,
        )  # fmt: skip
        max_steps = spec.max_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: triangle(step, max_steps))
        return optimizer, scheduler

    def _precision(self) -> AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.data.device.type, dtype=self.autocast_dtype)

    def _epoch(self, epoch: int) -> EpochPlan:
        if self._plan is None or self._plan[0] != epoch:
            self._plan = (epoch, epoch_plan(len(self.data.train_y), self.spec.seed, epoch, self.spec.translate,
                                            self.spec.flip))  # fmt: skip
        return self._plan[1]

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, within = divmod(self.step, self.per_epoch)
        plan = self._epoch(epoch)
        idx_np = plan.order[within * self.batch_size : (within + 1) * self.batch_size]
        device = self.data.device
        idx = torch.from_numpy(idx_np).to(device)
        x = self.data.normalize(torch.index_select(self.data.train_x, 0, idx))
        shifts = torch.from_numpy(plan.shifts[idx_np]).to(device)
        flips = torch.from_numpy(plan.flips[idx_np]).to(device)
        return shift_and_mirror(x, shifts, flips, self.spec.translate), torch.index_select(self.data.train_y, 0, idx)

    def train_step(self) -> None:
        spec, model = self.spec, self.model
        assert model.whiten.bias is not None
        model.whiten.bias.requires_grad = self.step // self.per_epoch < spec.whiten_bias_epochs
        with self.data_timer:
            x, y = self._batch()
        with self._precision():
            logits: torch.Tensor = self.runnable(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=spec.label_smoothing, reduction="sum")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        if self.lookahead is not None:
            if self.step % LOOKAHEAD_EVERY == 0:
                self.lookahead.pull(model, lookahead_keep(self.step, spec.max_steps))
            if self.step == spec.max_steps:
                self.lookahead.pull(model, 1.0)  # end on the slow weights
        self.running.add(loss / len(y), logits, y)

    def take_running(self) -> tuple[float, int, int, int]:
        return self.running.take()

    def take_data_seconds(self) -> float:
        return self.data_timer.take()

    @property
    def test_size(self) -> int:
        return len(self.data.test_y)

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float]:
        """Mean cross-entropy (without smoothing) and accuracy of the test-time-augmented logits."""
        model, data = self.model, self.data
        model.eval()
        loss_sum, correct = 0.0, 0
        size = EVAL_IMAGES_PER_BATCH[data.device.type]
        for start in range(0, len(data.test_y), size):
            x = data.normalize(data.test_x[start : start + size]).contiguous(memory_format=torch.channels_last)
            y = data.test_y[start : start + size]
            with self._precision():
                logits = tta_logits(self.runnable, x, self.spec.tta_level)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum().item())
        model.train()
        return loss_sum / len(data.test_y), correct / len(data.test_y)

    def capture(self, loop_state: dict[str, Any]) -> bytes:
        state = {
            "loop": loop_state,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "lookahead": self.lookahead.slow if self.lookahead is not None else None,
            "running": self.running.state(),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    def restore(self, checkpoint: bytes) -> dict[str, Any]:
        try:
            state = torch.load(io.BytesIO(checkpoint), map_location=self.data.device, weights_only=True)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.lookahead is not None:
                self.lookahead.slow = state["lookahead"]
            self.step = int(state["step"])
            self.running.load(state["running"])
        except Exception as exc:
            raise JobError(f"the job's checkpoint cannot be read ({exc}); resubmit the job") from exc
        return dict(state["loop"])


def whitening_sample(n_images: int, seed: int) -> np.ndarray:
    """Which training images the whitening is fitted on: a seeded sample of 5,000 from the whole set (the
    first 5,000 of an image folder are all of its first class: a whitening fitted on airplanes alone)."""
    rng = np.random.default_rng([seed, FLIP_STREAM + 1])
    return np.sort(rng.choice(n_images, size=min(WHITENING_IMAGES, n_images), replace=False))


def build_network(spec: SpeedrunSpec, n_classes: int) -> SpeedrunNet:
    return SpeedrunNet(tuple(spec.widths), n_classes)


def train_speedrun(
    spec: SpeedrunSpec, arrays: ImageArrays, norm: Normalization, reporter: Reporter, start: StartFrom
) -> RunResult:
    device = resolve_device(spec.device)
    seed_everything(spec.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = DeviceData.build(arrays, norm, device)
    model = build_network(spec, arrays.n_classes)
    with torch.no_grad():
        sample = torch.from_numpy(whitening_sample(len(arrays.train_y), spec.seed)).to(device)
        model.whiten.weight.copy_(whitening_filters(data.normalize(data.train_x[sample]).cpu()))
    if start.init is not None and start.checkpoint is None:
        shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
        matched = matched_weights(shapes, start.init, start.init_job or 0, arrays.n_classes)
        model.load_state_dict({name: torch.from_numpy(value) for name, value in matched.items()}, strict=False)
    model = model.to(device).to(memory_format=torch.channels_last)
    bf16 = use_bf16(spec.mixed_precision, device, convolutional=True)
    backend = SpeedrunBackend(model, data, spec, torch.bfloat16 if bf16 else None)
    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"the CPU, {threads} threads"
    log.info("training on %s in %s, channels-last, %s parameters, %d steps per epoch", where,
             "bfloat16 autocast" if bf16 else "float32", f"{sum(p.numel() for p in model.parameters()):,}",
             backend.per_epoch)  # fmt: skip
    plan = LoopPlan(spec.max_steps, spec.log_every, spec.eval_every, spec.checkpoint_every, backend.batch_size)
    result = run_loop(backend, plan, reporter, start.checkpoint, evaluate_first=start.init is not None)
    runtime = {"device": device.type, "precision": "bf16" if bf16 else "float32", "memory_format": "channels_last"}
    return RunResult(result.steps_done, result.stopped, result.metrics, runtime, numpy_state_dict(model))


class SpeedrunPredictor:
    """Predictions with the job's test-time augmentation (unless it said `predict_tta: false`), on the CPU."""

    def __init__(self, spec: SpeedrunSpec, artifact: ModelArtifact) -> None:
        self.class_names = artifact.class_names
        model = build_network(spec, len(artifact.class_names))
        model.load_state_dict({name: torch.from_numpy(value) for name, value in artifact.weights.items()})
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.normalize = TorchNormalizer(artifact.normalization)
        self.level = spec.tta_level if spec.predict_tta else 0
        wanted = spec.mixed_precision
        self.bf16 = wanted == "bf16" or (wanted == "auto" and bf16_is_fast_on_cpu())

    @torch.inference_mode()
    def probabilities(self, images_u8: np.ndarray) -> np.ndarray:
        x = self.normalize(torch.from_numpy(images_u8)).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits = tta_logits(self.model, x, self.level)
        probabilities: np.ndarray = torch.softmax(logits.double(), dim=1).numpy()
        return probabilities
