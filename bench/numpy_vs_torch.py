"""NumPy MLP against the same architecture in PyTorch, on the CPU, through the service's own training code.

    .venv/bin/python bench/numpy_vs_torch.py --data-dir data

Each row trains both kinds with the same spec (SGD, assignment preprocessing) via
`models.run.run_job`, each measurement in a fresh process as a worker runs each job in its own
child (so neither library's idle threads sit beside the other's), and compares the training images
per second that the loops report (evaluation time excluded). Each row is measured `--rounds` times,
the two kinds interleaved (the order alternating), and the table gives the medians: on a shared host
single measurements move by tens of percent. Targets: NumPy >= 0.9 of PyTorch everywhere, and
faster than PyTorch at batch 200 with hidden [100].
"""

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from bench.measure import in_fresh_process, train_on_cpu
from models.training.precision import cpu_model

CONFIGS = [([100], 200), ([100], 1000), ([800, 600, 400], 200), ([800, 600, 400], 1000)]


def images_per_second(model: str, hidden: list[int], batch: int, steps: int, data_dir: Path) -> float:
    """Training images per second of one run, in a fresh process."""
    spec = {"model": model, "hidden_units": hidden, "batch_size": batch, "max_steps": steps, "log_every": 50}
    rate: float = in_fresh_process(train_on_cpu, {**spec, "eval_every": 10**6}, data_dir)["images_per_second"]
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--images", type=int, default=120_000, help="training images per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurements of each kind per row")
    args = parser.parse_args()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs: {cpu_model()}")
    print("| hidden | batch | NumPy images/s | PyTorch images/s | NumPy / PyTorch | each round |")
    print("|---|---|---|---|---|---|")
    images_per_second("numpy_mlp", [100], 200, 20, args.data_dir)  # builds the array cache if needed
    for hidden, batch in CONFIGS:
        steps = max(50, args.images // batch)
        rates: dict[str, list[float]] = {"numpy_mlp": [], "torch_mlp": []}
        for round_number in range(args.rounds):
            order = ["numpy_mlp", "torch_mlp"] if round_number % 2 == 0 else ["torch_mlp", "numpy_mlp"]
            for model in order:
                rates[model].append(images_per_second(model, hidden, batch, steps, args.data_dir))
        ratios = [n / t for n, t in zip(rates["numpy_mlp"], rates["torch_mlp"], strict=True)]
        numpy_rate, torch_rate = statistics.median(rates["numpy_mlp"]), statistics.median(rates["torch_mlp"])
        print(
            f"| {hidden} | {batch} | {numpy_rate:,.0f} | {torch_rate:,.0f} | {statistics.median(ratios):.2f} "
            f"| {', '.join(f'{r:.2f}' for r in ratios)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
