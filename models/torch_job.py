"""Training any torch model kind: device, data, optimizer, schedule, augmentation, fast path."""

from collections.abc import Callable

import torch
from torch import nn

from models.augment import RandomCropFlip
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.device_data import DeviceData
from models.optim import build_optimizer, build_scheduler
from models.reporting import Reporter
from models.results import RunResult
from models.specs import ConvNetSpec, ResNet18Spec, TorchMLPSpec
from models.torch_setup import resolve_device, seed_everything
from models.train_torch import TrainPlan, numpy_state_dict, train

EVAL_IMAGES_PER_BATCH = {"cpu": 1000, "cuda": 5000}


TorchJobSpec = TorchMLPSpec | ConvNetSpec | ResNet18Spec


def train_torch_model(
    spec: TorchJobSpec,
    build: Callable[[], nn.Module],
    arrays: ImageArrays,
    norm: Normalization,
    reporter: Reporter,
    resume: bytes | None = None,
    eval_scale: float = 1.0,
) -> RunResult:
    """Build the model with `build()` (after seeding) and train it as the spec says.

    `eval_scale` shrinks evaluation batches for models that need more memory per image.
    """
    device = resolve_device(spec.device)
    seed_everything(spec.seed)
    on_gpu = device.type == "cuda"
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest kernels once
    data = DeviceData.build(arrays, norm, device)
    model = build().to(device)
    if on_gpu:
        model = model.to(memory_format=torch.channels_last)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(trainable, spec, spec.learning_rate)
    use_bf16 = spec.mixed_precision == "bf16" or (spec.mixed_precision == "auto" and on_gpu)
    plan = TrainPlan(
        batch_size=spec.batch_size,
        max_steps=spec.max_steps,
        eval_every=spec.eval_every,
        log_every=spec.log_every,
        seed=spec.seed,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, spec, spec.max_steps),
        loss_fn=nn.CrossEntropyLoss(label_smoothing=spec.label_smoothing),
        augment=RandomCropFlip(4, spec.seed + 1, device) if spec.augmentation == "crop_flip" else None,
        autocast_dtype=torch.bfloat16 if use_bf16 else None,
        channels_last=on_gpu,
        eval_batch=max(1, int(EVAL_IMAGES_PER_BATCH[device.type] * eval_scale)),
        checkpoint_every=spec.checkpoint_every,
    )
    runnable: nn.Module = torch.compile(model) if spec.compile else model  # type: ignore[assignment]
    result = train(runnable, data, plan, reporter, resume)
    result.metrics["device"] = device.type  # type: ignore[assignment]
    return RunResult(result.steps_done, result.stopped, result.metrics, weights=numpy_state_dict(model))
