"""Setting up a torch run: device, seed, data on the device, optimiser, schedule, augmentation,
precision and memory format; then `run_loop` drives the `TorchBackend`."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.kinds.common import TorchJobSpec
from models.training.augment import RandomCropFlip
from models.training.init_weights import matched_weights
from models.training.loop import LoopPlan, run_loop
from models.training.optim import build_optimizer, build_scheduler
from models.training.precision import bf16_is_fast_on_cpu
from models.training.reporting import Reporter
from models.training.results import RunResult, StartFrom
from models.training.torch_backend import TorchBackend, TorchStepPlan, numpy_state_dict
from models.training.torch_data import DeviceData
from models.training.torch_device import resolve_device, seed_everything

EVAL_IMAGES_PER_BATCH = {"cpu": 1000, "cuda": 5000}
log = logging.getLogger(__name__)


def use_bf16(mixed_precision: str, device: torch.device, convolutional: bool) -> bool:
    """`bf16` always; `auto` on a GPU, and for convolutional networks on a CPU where bfloat16 measured
    faster (`models.training.precision`; the MLPs gained nothing from it in bench/cpu_precision.py)."""
    if mixed_precision != "auto":
        return mixed_precision == "bf16"
    if device.type == "cuda":
        return True
    return convolutional and bf16_is_fast_on_cpu()


@dataclass
class TorchTraining:
    """A torch run set up and not started: its step-by-step backend, the loop's plan, the network (for its
    weights), and how it runs (device, precision, memory format)."""

    backend: TorchBackend
    loop_plan: LoopPlan
    model: nn.Module
    runtime: dict[str, str]


def train_torch_network(
    spec: TorchJobSpec,
    build: Callable[[], nn.Module],
    arrays: ImageArrays,
    norm: Normalization,
    reporter: Reporter,
    start: StartFrom,
    eval_scale: float = 1.0,
    convolutional: bool = False,
) -> RunResult:
    """Build the network with `build()` (after seeding), load `start.init`'s weights into it when
    given, and train it as the spec says (from `start.checkpoint`, when given).

    `eval_scale` shrinks evaluation batches for networks that need more memory per image;
    `convolutional` networks run in channels-last memory order, and may use bfloat16 on a CPU.
    """
    training = set_up_torch_training(spec, build, arrays, norm, start, eval_scale, convolutional)
    result = run_loop(training.backend, training.loop_plan, reporter, start.checkpoint,
                      evaluate_first=start.init is not None)  # fmt: skip
    return RunResult(result.steps_done, result.stopped, result.metrics, training.runtime,
                     numpy_state_dict(training.model))  # fmt: skip


def set_up_torch_training(
    spec: TorchJobSpec,
    build: Callable[[], nn.Module],
    arrays: ImageArrays,
    norm: Normalization,
    start: StartFrom,
    eval_scale: float = 1.0,
    convolutional: bool = False,
) -> TorchTraining:
    """Everything `train_torch_network` does before its loop (a benchmark steps the backend itself)."""
    device = resolve_device(spec.device)
    seed_everything(spec.seed)
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once
    data = DeviceData.build(arrays, norm, device)
    model = build()
    if start.init is not None and start.checkpoint is None:
        shapes = {name: tuple(value.shape) for name, value in model.state_dict().items()}
        matched = matched_weights(shapes, start.init, start.init_job or 0, arrays.n_classes)
        model.load_state_dict({name: torch.from_numpy(value) for name, value in matched.items()}, strict=False)
    model = model.to(device)
    if convolutional:
        model = model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(trainable, spec, spec.learning_rate)
    bf16 = use_bf16(spec.mixed_precision, device, convolutional)
    step_plan = TorchStepPlan(
        batch_size=spec.batch_size,
        seed=spec.seed,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, spec, spec.max_steps),
        loss_fn=nn.CrossEntropyLoss(label_smoothing=spec.label_smoothing),
        augment=RandomCropFlip(4, spec.seed + 1, device) if spec.augmentation == "crop_flip" else None,
        autocast_dtype=torch.bfloat16 if bf16 else None,
        channels_last=convolutional,
        eval_batch=max(1, int(EVAL_IMAGES_PER_BATCH[device.type] * eval_scale)),
    )
    threads = torch.get_num_threads()
    where = torch.cuda.get_device_name(device) if on_gpu else f"the CPU, {threads} thread{'s' * (threads != 1)}"
    log.info("training on %s in %s%s, %s parameters", where, "bfloat16 autocast" if bf16 else "float32",
             ", channels-last" if convolutional else "", f"{sum(p.numel() for p in model.parameters()):,}")  # fmt: skip
    runnable: nn.Module = torch.compile(model) if spec.compile else model  # type: ignore[assignment]
    loop_plan = LoopPlan(spec.max_steps, spec.log_every, spec.eval_every, spec.checkpoint_every, spec.batch_size)
    runtime = {
        "device": device.type,
        "precision": "bf16" if bf16 else "float32",
        "memory_format": "channels_last" if convolutional else "contiguous",
    }
    return TorchTraining(TorchBackend(runnable, data, step_plan), loop_plan, model, runtime)
