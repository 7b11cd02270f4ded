"""GPU benchmark: time to 90% and 94% test accuracy for ResNet18 (CIFAR stem), the ConvNet and the
`speedrun` kind (its defaults: the paper's 94% recipe, evaluated once at the end with its TTA),
through the service's own training code (`models.run.run_job`), plus images per second.

    python bench/gpu_conv_models.py --data-dir data            # on a GPU machine: the full table
    python bench/gpu_conv_models.py --data-dir data --quick    # any machine: a few steps each, speed only
    python bench/gpu_conv_models.py --data-dir data --only speedrun

Each row is one job spec run in this process; a reporter notes the wall time (everything from
the call to `run_job`: loading the cached arrays onto the device, building (and compiling) the
model, training and evaluation) at which the test accuracy first reaches each threshold.
`--tarball` unpacks the shared JPEG copy of CIFAR-10 first (for a fresh machine).
"""

import argparse
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from models.kinds import parse_spec
from models.run import run_job
from models.training.reporting import InMemoryReporter, Split
from models.training.results import DataSource

EPOCH_512 = 50_000 // 512 + 1  # steps per epoch at batch 512
RUNS: dict[str, dict[str, Any]] = {
    "resnet18 (cifar stem)": {
        "model": "resnet18", "stem": "cifar", "batch_size": 512, "optimizer": "sgd_momentum", "momentum": 0.9,
        "learning_rate": 0.4, "weight_decay": 5e-4, "lr_schedule": "cosine", "warmup_steps": EPOCH_512,
        "label_smoothing": 0.1, "augmentation": "crop_flip", "preprocessing": "standardize",
        "max_steps": 18 * EPOCH_512, "eval_every": EPOCH_512, "log_every": 20,
    },
    "convnet (assignment architecture)": {
        "model": "convnet", "batch_size": 512, "optimizer": "adamw", "learning_rate": 3e-3, "weight_decay": 0.05,
        "lr_schedule": "cosine", "warmup_steps": EPOCH_512, "label_smoothing": 0.1, "augmentation": "crop_flip",
        "preprocessing": "standardize", "max_steps": 18 * EPOCH_512, "eval_every": EPOCH_512, "log_every": 20,
    },
    "speedrun": {"model": "speedrun"},  # the paper's recipe, as a user submits it
}  # fmt: skip
THRESHOLDS = (0.90, 0.94)


class ClockReporter(InMemoryReporter):
    """Remembers when the test accuracy first reached each threshold."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.start = start
        self.reached: dict[float, float] = {}

    def progress(
        self, step: int, steps_per_second: float, images_per_second: float, data_wait: float | None = None
    ) -> None:
        super().progress(step, steps_per_second, images_per_second)

    def point(self, step: int, split: Split, loss: float, accuracy: float) -> None:
        now = time.perf_counter()
        super().point(step, split, loss, accuracy)
        if split == "test":
            for threshold in THRESHOLDS:
                if accuracy >= threshold and threshold not in self.reached:
                    self.reached[threshold] = now - self.start
                    print(f"  {accuracy:.4f} at step {step}, {now - self.start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--tarball", type=Path, help="unpack this cifar10-jpeg.tar.gz into DATA_DIR/cifar10 first")
    parser.add_argument("--quick", action="store_true", help="30 steps per model: images per second only")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models")
    parser.add_argument("--only", choices=list(RUNS), help="run one model")
    args = parser.parse_args()
    if args.tarball and not (args.data_dir / "cifar10" / "train").is_dir():
        (args.data_dir / "cifar10").mkdir(parents=True, exist_ok=True)
        with tarfile.open(args.tarball) as tar:
            tar.extractall(args.data_dir / "cifar10", filter="data")
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    print(f"torch {torch.__version__}, {gpu}, {os.cpu_count()} CPUs")
    print(
        "| model | device | images/s (training) | time to 90% | time to 94% | final test acc | best test acc | "
        "steps | wall time |\n|---|---|---|---|---|---|---|---|---|"
    )
    for label, spec in RUNS.items():
        if args.only and label != args.only:
            continue
        spec = {**spec, "compile": args.compile}
        if args.quick:
            spec.update(max_steps=30, eval_every=30, log_every=10, batch_size=64)
            if spec["model"] != "speedrun":  # its schedule has no warm-up field
                spec["warmup_steps"] = 0
        started = time.perf_counter()
        reporter = ClockReporter(started)
        result = run_job(parse_spec(spec), reporter, DataSource(args.data_dir))
        wall = time.perf_counter() - started
        m = result.job_metrics()
        times = [f"{reporter.reached[t]:.1f} s" if t in reporter.reached else "not reached" for t in THRESHOLDS]
        print(
            f"| {label} | {m['device']} | {m['images_per_second']:,.0f} | {times[0]} | {times[1]} | "
            f"{m['test_accuracy']:.4f} | {m['best_test_accuracy']:.4f} | {result.steps_done} | {wall:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
