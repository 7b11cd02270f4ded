"""The torch backend of the training loop: one step, whole-test-set evaluation, and exact checkpoints."""

import io
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from models.errors import JobError
from models.training.augment import RandomCropFlip
from models.training.curve import DataTimer
from models.training.sampler import EpochSampler
from models.training.torch_data import DeviceData


@dataclass
class TorchStepPlan:
    """How each torch step and evaluation runs."""

    batch_size: int
    seed: int
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # on normalised float batches
    autocast_dtype: torch.dtype | None = None  # bfloat16 autocast for forward and loss, or none
    channels_last: bool = False  # NHWC memory order for the conv nets (CPU and GPU)
    eval_batch: int = 1000


class RunningSums:
    """A train point's sums since the last one: loss and correct counts kept on the device (no sync per
    step), steps and images counted here. Every torch backend keeps one."""

    def __init__(self, device: torch.device) -> None:
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.steps, self.images = 0, 0

    def add(self, mean_loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss_sum += mean_loss.detach()
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.steps += 1
        self.images += len(y)

    def state(self) -> list[float | int]:
        return [self.loss_sum.item(), int(self.correct.item()), self.steps, self.images]  # syncs the device

    def take(self) -> tuple[float, int, int, int]:
        """(loss sum, correct, steps, images) since the last call, and start again."""
        loss_sum, correct, steps, images = self.state()
        self.load([0.0, 0, 0, 0])
        return float(loss_sum), int(correct), int(steps), int(images)

    def load(self, state: list[float | int]) -> None:
        loss_sum, correct, steps, images = state
        self.loss_sum.fill_(loss_sum)
        self.correct.fill_(correct)
        self.steps, self.images = int(steps), int(images)


def numpy_state_dict(model: nn.Module) -> dict[str, np.ndarray]:
    """Weights and buffers as float32/int64 NumPy arrays on the CPU, for the safetensors artifact."""
    return {
        name: value.detach().float().cpu().numpy() if value.is_floating_point() else value.detach().cpu().numpy()
        for name, value in model.state_dict().items()
    }


def prepare(x: torch.Tensor, plan: TorchStepPlan) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if plan.channels_last else x


def autocast(device: torch.device, plan: TorchStepPlan) -> torch.autocast | nullcontext[None]:
    if plan.autocast_dtype is None:
        return nullcontext()  # cheaper than a disabled autocast on every step
    return torch.autocast(device.type, dtype=plan.autocast_dtype)


@torch.inference_mode()
def evaluate(model: nn.Module, data: DeviceData, plan: TorchStepPlan) -> tuple[float, float]:
    """Mean loss and accuracy over the whole test set, in eval mode."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=data.device, dtype=torch.float64)
    correct = torch.zeros((), device=data.device, dtype=torch.int64)
    n, size = len(data.test_y), plan.eval_batch
    for start in range(0, n, size):
        x = prepare(data.normalize(data.test_x[start : start + size]), plan)
        y = data.test_y[start : start + size]
        with autocast(data.device, plan):
            logits = model(x).float()
        loss_sum += plan.loss_fn(logits, y).double() * len(y)
        correct += (logits.argmax(1) == y).sum()
    model.train(was_training)
    return loss_sum.item() / n, correct.item() / n


class TorchBackend:
    """A torch network on its device, trained step by step by `models.training.loop.run_loop`."""

    def __init__(self, model: nn.Module, data: DeviceData, plan: TorchStepPlan) -> None:
        self.model, self.data, self.plan = model, data, plan
        self.sampler = EpochSampler(len(data.train_y), plan.batch_size, plan.seed)
        self.running = RunningSums(data.device)
        self.data_timer = DataTimer()
        model.train()

    def train_step(self) -> None:
        data, plan = self.data, self.plan
        with self.data_timer:
            idx = torch.from_numpy(self.sampler.next()).to(data.device, non_blocking=True)
            # index_select copies whole rows; x[idx] goes through the general indexing kernel, ~15x slower here
            x = data.normalize(torch.index_select(data.train_x, 0, idx))
            y = torch.index_select(data.train_y, 0, idx)
            if plan.augment is not None:
                x = plan.augment(x)
        with autocast(data.device, plan):
            logits = self.model(prepare(x, plan))
            loss = plan.loss_fn(logits.float(), y)
        plan.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        plan.optimizer.step()
        if plan.scheduler is not None:
            plan.scheduler.step()
        self.running.add(loss, logits, y)

    def take_running(self) -> tuple[float, int, int, int]:
        return self.running.take()

    def take_data_seconds(self) -> float:
        return self.data_timer.take()

    @property
    def test_size(self) -> int:
        return len(self.data.test_y)

    def evaluate(self) -> tuple[float, float]:
        return evaluate(self.model, self.data, self.plan)

    def _module(self) -> nn.Module:
        module: nn.Module = getattr(self.model, "_orig_mod", self.model)  # torch.compile wraps the model
        return module

    def capture(self, loop_state: dict[str, Any]) -> bytes:
        """Everything a resumed run needs to continue exactly: weights, optimizer, schedule, every RNG."""
        plan = self.plan
        sampler_meta, order = self.sampler.state()
        state = {
            "loop": loop_state,
            "model": self._module().state_dict(),
            "optimizer": plan.optimizer.state_dict(),
            "scheduler": plan.scheduler.state_dict() if plan.scheduler is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "sampler": sampler_meta,
            "order": torch.from_numpy(order),
            "augment_rng": plan.augment.generator.get_state() if isinstance(plan.augment, RandomCropFlip) else None,
            "running": self.running.state(),
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    def restore(self, checkpoint: bytes) -> dict[str, Any]:
        plan = self.plan
        try:
            state = torch.load(io.BytesIO(checkpoint), map_location="cpu", weights_only=True)
            self._module().load_state_dict(state["model"])
            plan.optimizer.load_state_dict(state["optimizer"])
            if plan.scheduler is not None and state["scheduler"] is not None:
                plan.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            if state["cuda_rng"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])
            self.sampler.load_state(state["sampler"], state["order"].numpy())
            if isinstance(plan.augment, RandomCropFlip) and state["augment_rng"] is not None:
                plan.augment.generator.set_state(state["augment_rng"])
            self.running.load(state["running"])
        except Exception as exc:
            raise JobError(f"the job's checkpoint cannot be read ({exc}); resubmit the job") from exc
        return dict(state["loop"])
