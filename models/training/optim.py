"""Optimizers and learning-rate schedules, shared by every torch model kind."""

import math
from collections.abc import Iterable

import torch

from models.kinds.common import TorchTrainingOptions


def build_optimizer(
    params: Iterable[torch.nn.Parameter], opts: TorchTrainingOptions, learning_rate: float
) -> torch.optim.Optimizer:
    wd = opts.weight_decay
    if opts.optimizer == "adam":
        return torch.optim.Adam(params, lr=learning_rate, weight_decay=wd)
    if opts.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=wd)
    if opts.optimizer == "sgd_momentum":
        return torch.optim.SGD(params, lr=learning_rate, momentum=opts.momentum or 0.9, weight_decay=wd)
    return torch.optim.SGD(params, lr=learning_rate, weight_decay=wd)


def lr_factor(step: int, opts: TorchTrainingOptions, max_steps: int) -> float:
    """Multiplier of the base learning rate for the step about to be taken (0-based)."""
    warmup = opts.warmup_steps
    if step < warmup:
        return (step + 1) / warmup  # linear warm-up
    if opts.lr_schedule == "cosine":
        progress = (step - warmup) / max(1, max_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if opts.lr_schedule == "step":
        assert opts.lr_step_every is not None and opts.lr_step_gamma is not None  # the spec requires them
        return opts.lr_step_gamma ** ((step - warmup) // opts.lr_step_every)
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, opts: TorchTrainingOptions, max_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if opts.lr_schedule == "constant" and opts.warmup_steps == 0:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, opts, max_steps))
