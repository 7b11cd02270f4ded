"""The PyTorch training loop every torch model kind shares."""

import io
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models.augment import RandomCropFlip
from models.curve import Cadence, CurveRecorder
from models.device_data import DeviceData, EpochSampler
from models.errors import JobError
from models.reporting import Reporter


@dataclass
class TrainPlan:
    batch_size: int
    max_steps: int
    eval_every: int
    log_every: int
    seed: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # on normalised float batches
    autocast_dtype: torch.dtype | None = None  # bfloat16 autocast for forward and loss, or none
    channels_last: bool = False  # NHWC memory order for convolutions on a GPU
    eval_batch: int = 1000
    checkpoint_every: int = 1000


@dataclass
class TrainResult:
    steps_done: int
    stopped: bool  # True when should_stop() ended the loop early
    metrics: dict[str, float] = field(default_factory=dict)


def numpy_state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """Weights and buffers as float32/int64 NumPy arrays on the CPU, for the safetensors artifact."""
    return {
        name: value.detach().float().cpu().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
        for name, value in model.state_dict().items()
    }


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceData, plan: TrainPlan) -> tuple[float, float]:
    """Mean loss and accuracy over the whole test set, in eval mode."""
    was_training = model.training
    model.eval()
    loss_fn = plan.loss_fn
    loss_sum = torch.zeros((), device=data.device, dtype=torch.float64)
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    n, size = len(data.test_y), plan.eval_batch
    for start in range(0, n, size):
        x = prepare(data.normalize(data.test_x[start : start + size]), plan)
        y = data.test_y[start : start + size]
        with autocast(data.device, plan):
            logits = model(x).float()
        loss_sum += loss_fn(logits, y).double() * len(y)
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / n, correct.item() / n


def prepare(x: torch.Tensor, plan: TrainPlan) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if plan.channels_last else x


def autocast(device: torch.device, plan: TrainPlan) -> torch.autocast | nullcontext[None]:
    if plan.autocast_dtype is None:
        return nullcontext()  # cheaper than a disabled autocast on every step
    return torch.autocast(device.type, dtype=plan.autocast_dtype)


def _capture(
    step: int, model: nn.Module, plan: TrainPlan, sampler: EpochSampler, curve: CurveRecorder, running: dict[str, float]
) -> bytes:
    """Everything a resumed run needs to continue exactly: weights, optimizer, schedule, every RNG."""
    state = {
        "step": step,
        "model": getattr(model, "_orig_mod", model).state_dict(),  # torch.compile wraps the module
        "optimizer": plan.optimizer.state_dict(),
        "scheduler": plan.scheduler.state_dict() if plan.scheduler is not None else None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "sampler": sampler.state(),
        "augment_rng": plan.augment.generator.get_state() if isinstance(plan.augment, RandomCropFlip) else None,
        "curve": curve.state(),
        "running": running,
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _restore(data: bytes, model: nn.Module, plan: TrainPlan, sampler: EpochSampler, curve: CurveRecorder) -> dict:
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise JobError(f"the job's checkpoint cannot be read ({exc}); resubmit the job") from exc
    getattr(model, "_orig_mod", model).load_state_dict(state["model"])
    plan.optimizer.load_state_dict(state["optimizer"])
    if plan.scheduler is not None and state["scheduler"] is not None:
        plan.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    sampler.load_state(state["sampler"])
    if isinstance(plan.augment, RandomCropFlip) and state["augment_rng"] is not None:
        plan.augment.generator.set_state(state["augment_rng"])
    curve.load_state(state["curve"])
    return state  # type: ignore[no-any-return]


def train(
    model: nn.Module, data: DeviceData, plan: TrainPlan, reporter: Reporter, resume: bytes | None = None
) -> TrainResult:
    """Train `model` for `plan.max_steps` steps (continuing from `resume`, a checkpoint, when given),
    reporting curve points, progress and checkpoints."""
    cadence = Cadence(plan.max_steps, plan.log_every, plan.eval_every)
    curve = CurveRecorder(cadence, plan.batch_size, reporter)
    sampler = EpochSampler(len(data.train_y), plan.batch_size, plan.seed, data.device)
    model.train()
    loss_sum = torch.zeros((), device=data.device)  # summed on the device: no sync per step
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    steps_since_log, images_since_log = 0, 0
    step, stopped = 0, False
    if resume is not None:
        state = _restore(resume, model, plan, sampler, curve)
        step = state["step"]
        run = state["running"]
        loss_sum.fill_(run["loss_sum"])
        correct.fill_(run["correct"])
        steps_since_log, images_since_log = run["steps"], run["images"]

    def checkpoint() -> None:
        running = {
            "loss_sum": loss_sum.item(),
            "correct": int(correct.item()),
            "steps": steps_since_log,
            "images": images_since_log,
        }
        reporter.checkpoint(step, _capture(step, model, plan, sampler, curve, running))

    while step < plan.max_steps:
        # forward / backward / step
        idx = sampler.next()
        # index_select copies whole rows; x[idx] goes through the general indexing kernel, ~15x slower here
        x = data.normalize(torch.index_select(data.train_x, 0, idx))
        y = torch.index_select(data.train_y, 0, idx)
        if plan.augment is not None:
            x = plan.augment(x)
        with autocast(data.device, plan):
            logits = model(prepare(x, plan))
            loss = plan.loss_fn(logits.float(), y)
        plan.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        plan.optimizer.step()
        if plan.scheduler is not None:
            plan.scheduler.step()
        step += 1
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == y).sum()
        steps_since_log += 1
        images_since_log += len(y)
        # log / evaluate / checkpoint (.item() syncs the device, so only here)
        if cadence.is_log_step(step):
            curve.train_point(step, loss_sum.item(), int(correct.item()), steps_since_log, images_since_log)
            loss_sum.zero_()
            correct.zero_()
            steps_since_log, images_since_log = 0, 0
            if cadence.is_eval_step(step):
                curve.test_point(step, *evaluate(model, data, plan))
            curve.resume_clock()
        if step % plan.checkpoint_every == 0 and step < plan.max_steps:
            checkpoint()
            curve.resume_clock()
        # stop check: a stopped job keeps its state, so that it can resume
        if reporter.should_stop() and step < plan.max_steps:
            checkpoint()
            stopped = True
            break
    return TrainResult(steps_done=step, stopped=stopped, metrics=curve.final_metrics(step))
