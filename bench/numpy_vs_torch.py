"""NumPy MLP against the same architecture in PyTorch, on the CPU, through the service's own training code.

    .venv/bin/python bench/numpy_vs_torch.py --data-dir data

Each row trains both kinds with the same spec (SGD, assignment preprocessing) via
`models.run.run_job`, each measurement in a fresh process as a worker runs each job in its own
child (so neither library's idle threads sit beside the other's), and compares the training images
per second that the loops report (evaluation time excluded). Targets: NumPy >= 0.9 of PyTorch
everywhere, and faster than PyTorch at batch 200 with hidden [100].
"""

import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from models.kinds import parse_spec
from models.run import run_job
from models.training.precision import cpu_model
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource

CONFIGS = [([100], 200), ([100], 1000), ([800, 600, 400], 200), ([800, 600, 400], 1000)]


def images_per_second(model: str, hidden: list[int], batch: int, steps: int, data_dir: Path) -> float:
    spec = {
        "model": model,
        "hidden_units": hidden,
        "batch_size": batch,
        "max_steps": steps,
        "eval_every": 10**6,
        "log_every": 50,
        "device": "cpu",
    }
    return run_job(parse_spec(spec), InMemoryReporter(), DataSource(data_dir)).metrics["images_per_second"]


def in_fresh_process(model: str, hidden: list[int], batch: int, steps: int, data_dir: Path) -> float:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(images_per_second, model, hidden, batch, steps, data_dir).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--images", type=int, default=200_000, help="training images per measurement")
    args = parser.parse_args()
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} CPUs: {cpu_model()}")
    print("| hidden | batch | NumPy images/s | PyTorch images/s | NumPy / PyTorch |")
    print("|---|---|---|---|---|")
    in_fresh_process("numpy_mlp", [100], 200, 20, args.data_dir)  # builds the array cache if needed
    for hidden, batch in CONFIGS:
        steps = max(50, args.images // batch)
        numpy_rate = in_fresh_process("numpy_mlp", hidden, batch, steps, args.data_dir)
        torch_rate = in_fresh_process("torch_mlp", hidden, batch, steps, args.data_dir)
        print(
            f"| {hidden} | {batch} | {numpy_rate:,.0f} | {torch_rate:,.0f} | {numpy_rate / torch_rate:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
