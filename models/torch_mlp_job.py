"""Training a `torch_mlp` job."""

from torch import nn

from models.artifacts import ModelArtifact
from models.augment import RandomCropFlip
from models.data.arrays import ImageArrays
from models.data.preprocessing import Normalization
from models.device_data import DeviceData
from models.optim import build_optimizer, build_scheduler
from models.reporting import Reporter
from models.results import RunResult
from models.specs import CIFAR_INPUTS, TorchMLPSpec, parse_spec
from models.torch_mlp import TorchMLP, TorchMLPConfig
from models.torch_predict import TorchPredictor
from models.torch_setup import resolve_device, seed_everything
from models.train_torch import TrainPlan, numpy_state_dict, train


def build_model(spec: TorchMLPSpec, n_classes: int) -> TorchMLP:
    return TorchMLP(
        TorchMLPConfig(
            CIFAR_INPUTS, tuple(spec.hidden_units), n_classes, spec.activation, spec.norm, spec.dropout, spec.init
        )
    )


def train_torch_mlp(spec: TorchMLPSpec, arrays: ImageArrays, norm: Normalization, reporter: Reporter) -> RunResult:
    device = resolve_device(spec.device)
    seed_everything(spec.seed)
    data = DeviceData.build(arrays, norm, device)
    model = build_model(spec, arrays.n_classes).to(device)
    optimizer = build_optimizer(model.parameters(), spec, spec.learning_rate)
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
    )
    result = train(model, data, plan, reporter)
    result.metrics["device"] = device.type  # type: ignore[assignment]
    return RunResult(result.steps_done, result.stopped, result.metrics, weights=numpy_state_dict(model))


def load_torch_mlp(artifact: ModelArtifact) -> TorchPredictor:
    spec = parse_spec(artifact.spec)
    assert isinstance(spec, TorchMLPSpec)
    return TorchPredictor(build_model(spec, len(artifact.class_names)), artifact)
