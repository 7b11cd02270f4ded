"""The PyTorch training loop every torch model kind shares."""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models.curve import Cadence, CurveRecorder
from models.device_data import DeviceData, EpochSampler
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


def autocast(device: torch.device, plan: TrainPlan) -> torch.autocast:
    return torch.autocast(
        device.type, dtype=plan.autocast_dtype or torch.float32, enabled=plan.autocast_dtype is not None
    )


def train(model: nn.Module, data: DeviceData, plan: TrainPlan, reporter: Reporter) -> TrainResult:
    """Train `model` for `plan.max_steps` steps, reporting curve points and progress."""
    cadence = Cadence(plan.max_steps, plan.log_every, plan.eval_every)
    curve = CurveRecorder(cadence, plan.batch_size, reporter)
    sampler = EpochSampler(len(data.train_y), plan.batch_size, plan.seed, data.device)
    model.train()
    loss_sum = torch.zeros((), device=data.device)  # summed on the device: no sync per step
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    steps_since_log, images_since_log = 0, 0
    step, stopped = 0, False
    while step < plan.max_steps:
        # forward / backward / step
        idx = sampler.next()
        x = data.normalize(data.train_x[idx])
        y = data.train_y[idx]
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
        # log / evaluate (.item() syncs the device, so only here)
        if cadence.is_log_step(step):
            curve.train_point(step, loss_sum.item(), int(correct.item()), steps_since_log, images_since_log)
            loss_sum.zero_()
            correct.zero_()
            steps_since_log, images_since_log = 0, 0
            if cadence.is_eval_step(step):
                curve.test_point(step, *evaluate(model, data, plan))
            curve.resume_clock()
        # stop check
        if reporter.should_stop():
            stopped = True
            break
    return TrainResult(steps_done=step, stopped=stopped, metrics=curve.final_metrics(step))
