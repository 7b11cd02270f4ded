"""Where a NumPy MLP training step spends its time, phase by phase, on this CPU.

    .venv/bin/python bench/numpy_step_profile.py --data-dir data

Trains the NumPy MLP (the service's own modules, assignment initialisation and preprocessing,
denormals flushed as in every training process) on CIFAR-10 batches and times each phase of the
step: sampling and normalising the batch, the Linear layers' forward and backward (the matrix
products), the ELUs' forward and backward, the fused softmax cross-entropy, and the SGD update.
Element-wise phases run on one thread while the products use every core, so the table shows what
a CPU with slower element-wise work (or slower masked copies) pays for; run it on such a CPU to
see why `bench/numpy_vs_torch.py` differs there.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from models.data.catalog import load_dataset
from models.data.preprocessing import FlatNormalizer, fit_normalization
from models.networks.numpy_mlp import MLP
from models.networks.numpy_modules import softmax_cross_entropy
from models.training.denormals import denormals_flushed
from models.training.precision import cpu_model
from models.training.sampler import EpochSampler

PHASES = ["batch", "linear forward", "elu forward", "softmax + loss", "linear backward", "elu backward", "sgd"]
CONFIGS = [([100], 200), ([800, 600, 400], 200), ([800, 600, 400], 1000)]


def timed(phase: str, totals: dict[str, float], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = function(*args, **kwargs)
        totals[phase] += time.perf_counter() - started
        return result

    return wrapper


def profile(hidden: list[int], batch: int, steps: int, data_dir: Path) -> tuple[float, dict[str, float]]:
    """(seconds per step, seconds per step by phase) over `steps` steps after 20 warm-up steps."""
    arrays = load_dataset("cifar10", data_dir)
    rows = arrays.train_x.reshape(len(arrays.train_x), -1)
    normalize = FlatNormalizer(fit_normalization("assignment", arrays.train_x), np.float32)
    model = MLP(rows.shape[1], hidden, 10)
    totals = dict.fromkeys(PHASES, 0.0)
    for linear in model.linears:
        linear.forward = timed("linear forward", totals, linear.forward)  # type: ignore[method-assign]
        linear.backward = timed("linear backward", totals, linear.backward)  # type: ignore[method-assign]
    for activation in model.activations:
        activation.forward = timed("elu forward", totals, activation.forward)  # type: ignore[method-assign]
        activation.backward = timed("elu backward", totals, activation.backward)  # type: ignore[method-assign]
    sampler = EpochSampler(len(arrays.train_y), batch, seed=42)

    def step() -> None:
        started = time.perf_counter()
        idx = sampler.next()
        x, y = normalize(rows[idx]), arrays.train_y[idx]
        totals["batch"] += time.perf_counter() - started
        logits = model.forward(x)
        started = time.perf_counter()
        _, _, dlogits = softmax_cross_entropy(logits, y)
        int((logits.argmax(1) == y).sum())
        totals["softmax + loss"] += time.perf_counter() - started
        model.backward(dlogits)
        started = time.perf_counter()
        model.sgd_step(1e-3)
        totals["sgd"] += time.perf_counter() - started

    with denormals_flushed():
        for _ in range(20):
            step()
        totals.update(dict.fromkeys(PHASES, 0.0))
        started = time.perf_counter()
        for _ in range(steps):
            step()
        elapsed = time.perf_counter() - started
    return elapsed / steps, {phase: total / steps for phase, total in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--images", type=int, default=60_000, help="training images per configuration")
    args = parser.parse_args()
    print(f"NumPy {np.__version__}: {cpu_model()}")
    print(f"| hidden, batch | ms per step | {' | '.join(PHASES)} |")
    print(f"|---|---|{'---|' * len(PHASES)}")
    for hidden, batch in CONFIGS:
        per_step, phases = profile(hidden, batch, max(50, args.images // batch), args.data_dir)
        shares = " | ".join(f"{1000 * phases[p]:.2f} ({100 * phases[p] / per_step:.0f}%)" for p in PHASES)
        print(f"| {hidden}, {batch} | {1000 * per_step:.2f} | {shares} |", flush=True)


if __name__ == "__main__":
    main()
