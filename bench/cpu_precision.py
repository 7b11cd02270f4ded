"""bfloat16 autocast and channels-last against float32 for the conv nets on the CPU, through `run_job`.

    .venv/bin/python bench/cpu_precision.py --data-dir data [--rounds 2]

Trains the ConvNet (batch 32) and the CIFAR-stem ResNet18 (batch 128) on real CIFAR-10 for a fixed
number of steps with `mixed_precision: "off"` and `"auto"`, interleaved, each run in a fresh process
as a worker runs each job, and evaluates the whole test set once at the end. Prints the training and
evaluation images per second the job reports and their ratios (auto / off), and the precision each
run chose. Targets on a CPU with AMX: training >= 1.8x and evaluation >= 2.5x for the ConvNet; on a
CPU without fast bfloat16, auto >= 0.97x of off.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import in_fresh_process, train_on_cpu
from models.training.precision import cpu_model

MODELS: dict[str, dict[str, Any]] = {
    "ConvNet, batch 32": {"model": "convnet", "batch_size": 32, "max_steps": 150},
    "ResNet18 CIFAR stem, batch 128": {"model": "resnet18", "stem": "cifar", "batch_size": 128, "max_steps": 30},
}


def measure(spec: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    return in_fresh_process(train_on_cpu, {**spec, "eval_every": spec["max_steps"], "log_every": 10}, data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--rounds", type=int, default=1, help="off/auto pairs per model, interleaved")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    print("| model | precision (auto chose) | off train / eval images/s | auto train / eval images/s "
          "| train ratio | eval ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for label, spec in MODELS.items():
        for _ in range(args.rounds):
            off = measure({**spec, "mixed_precision": "off"}, args.data_dir)
            auto = measure({**spec, "mixed_precision": "auto"}, args.data_dir)
            train_ratio = auto["images_per_second"] / off["images_per_second"]
            eval_ratio = auto["eval_images_per_second"] / off["eval_images_per_second"]
            print(
                f"| {label} | {auto['precision']}, {auto['memory_format']} "
                f"| {off['images_per_second']:.0f} / {off['eval_images_per_second']:.0f} "
                f"| {auto['images_per_second']:.0f} / {auto['eval_images_per_second']:.0f} "
                f"| {train_ratio:.2f} | {eval_ratio:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
