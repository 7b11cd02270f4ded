"""The PyTorch training loop every torch model kind shares."""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from models.device_data import DeviceData, EpochSampler
from models.reporting import Reporter

EVAL_BATCH = 2000


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


@dataclass
class TrainResult:
    steps_done: int
    stopped: bool  # True when should_stop() ended the loop early
    metrics: dict[str, float] = field(default_factory=dict)


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceData, loss_fn: nn.Module) -> tuple[float, float]:
    """Mean loss and accuracy over the whole test set, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=data.device, dtype=torch.float64)
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    n = len(data.test_y)
    for start in range(0, n, EVAL_BATCH):
        x = data.normalize(data.test_x[start : start + EVAL_BATCH])
        y = data.test_y[start : start + EVAL_BATCH]
        logits = model(x).float()
        loss_sum += loss_fn(logits, y).double() * len(y)
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / n, correct.item() / n


def train(model: nn.Module, data: DeviceData, plan: TrainPlan, reporter: Reporter) -> TrainResult:
    """Train `model` for `plan.max_steps` steps, reporting curve points and progress."""
    sampler = EpochSampler(len(data.train_y), plan.batch_size, plan.seed, data.device)
    model.train()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    since_log, seen_since_log = 0, 0
    train_seconds, eval_seconds = 0.0, 0.0
    best_acc, best_step = -1.0, 0
    last: dict[str, float] = {}
    step = 0
    tick = time.perf_counter()
    stopped = False
    while step < plan.max_steps:
        # forward / backward / step
        idx = sampler.next()
        x = data.normalize(data.train_x[idx])
        y = data.train_y[idx]
        if plan.augment is not None:
            x = plan.augment(x)
        logits = model(x)
        loss = plan.loss_fn(logits, y)
        plan.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        plan.optimizer.step()
        if plan.scheduler is not None:
            plan.scheduler.step()
        step += 1
        loss_sum += loss.detach()
        correct += (logits.detach().argmax(1) == y).sum()
        since_log += 1
        seen_since_log += len(y)

        is_last = step == plan.max_steps
        if step % plan.log_every == 0 or is_last or step % plan.eval_every == 0:
            # log: running means since the last point, and timing (this .item() syncs the device)
            train_loss = loss_sum.item() / since_log
            train_acc = correct.item() / seen_since_log
            if not math.isfinite(train_loss):
                raise FloatingPointError(f"training loss became {train_loss} at step {step}: lower the learning rate")
            now = time.perf_counter()
            train_seconds += now - tick
            reporter.point(step, "train", train_loss, train_acc)
            reporter.progress(step, step / train_seconds, step * plan.batch_size / train_seconds)
            last.update(train_loss=train_loss, train_accuracy=train_acc)
            loss_sum.zero_()
            correct.zero_()
            since_log, seen_since_log = 0, 0
            # evaluate
            if step % plan.eval_every == 0 or is_last:
                test_loss, test_acc = evaluate(model, data, plan.loss_fn)
                reporter.point(step, "test", test_loss, test_acc)
                last.update(test_loss=test_loss, test_accuracy=test_acc)
                if test_acc > best_acc:
                    best_acc, best_step = test_acc, step
            tick = time.perf_counter()
            eval_seconds += tick - now
        # stop check
        if reporter.should_stop():
            stopped = True
            break
    train_seconds += time.perf_counter() - tick if since_log else 0.0
    metrics = dict(last)
    if best_acc >= 0:
        metrics.update(best_test_accuracy=best_acc, best_step=float(best_step))
    metrics.update(
        steps=float(step),
        train_seconds=train_seconds,
        eval_seconds=eval_seconds,
        steps_per_second=step / train_seconds if train_seconds else 0.0,
        images_per_second=step * plan.batch_size / train_seconds if train_seconds else 0.0,
    )
    return TrainResult(steps_done=step, stopped=stopped, metrics=metrics)
