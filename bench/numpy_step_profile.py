"""Where a NumPy MLP training step spends its time, phase by phase, on this CPU.

    .venv/bin/python bench/numpy_step_profile.py --data-dir data

Runs the service's own NumPy training step (`NumpyMLPBackend.train_step`: assignment initialisation
and preprocessing, denormals flushed as in every training process) on CIFAR-10 and times each phase:
normalising the batch, the Linear layers' forward and backward (the matrix products), the ELUs'
forward and backward, the fused softmax cross-entropy, the SGD update, and the rest of the step.
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
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from models.data.catalog import load_dataset
from models.data.preprocessing import fit_normalization
from models.networks.numpy_mlp import MLP
from models.networks.numpy_modules import softmax_cross_entropy
from models.training import numpy_backend
from models.training.denormals import denormals_flushed
from models.training.numpy_backend import NumpyMLPBackend
from models.training.precision import cpu_model

PHASES = ["normalise", "linear forward", "elu forward", "softmax + loss", "linear backward", "elu backward", "sgd"]
CONFIGS = [([100], 200), ([800, 600, 400], 200), ([800, 600, 400], 1000)]


def timed(phase: str, totals: dict[str, float], function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = function(*args, **kwargs)
        totals[phase] += time.perf_counter() - started
        return result

    return wrapper


def profile(hidden: list[int], batch: int, steps: int, data_dir: Path) -> tuple[float, dict[str, float]]:
    """(seconds per step, seconds per step by phase) of `NumpyMLPBackend.train_step`, the service's own
    step, over `steps` steps after 20 warm-up steps; what no phase covers (sampling, gathering the
    batch's rows, counting correct answers) is "other"."""
    arrays = load_dataset("cifar10", data_dir)
    model = MLP(arrays.train_x[0].size, hidden, 10)
    backend = NumpyMLPBackend(model, arrays, fit_normalization("assignment", arrays.train_x), batch, 1e-3, seed=42)
    totals = dict.fromkeys(PHASES, 0.0)
    backend.normalize = timed("normalise", totals, backend.normalize)  # type: ignore[assignment]
    model.sgd_step = timed("sgd", totals, model.sgd_step)  # type: ignore[method-assign]
    for linear in model.linears:
        linear.forward = timed("linear forward", totals, linear.forward)  # type: ignore[method-assign]
        linear.backward = timed("linear backward", totals, linear.backward)  # type: ignore[method-assign]
    for activation in model.activations:
        activation.forward = timed("elu forward", totals, activation.forward)  # type: ignore[method-assign]
        activation.backward = timed("elu backward", totals, activation.backward)  # type: ignore[method-assign]
    timed_loss = timed("softmax + loss", totals, softmax_cross_entropy)
    with mock.patch.object(numpy_backend, "softmax_cross_entropy", timed_loss), denormals_flushed():
        for _ in range(20):
            backend.train_step()
        totals.update(dict.fromkeys(PHASES, 0.0))
        started = time.perf_counter()
        for _ in range(steps):
            backend.train_step()
        elapsed = time.perf_counter() - started
    by_phase = {phase: total / steps for phase, total in totals.items()}
    by_phase["other"] = elapsed / steps - sum(by_phase.values())
    return elapsed / steps, by_phase


def per_call_seconds(function: Callable[[], object], repeats: int = 500) -> float:
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def elementwise_costs() -> list[tuple[str, float, int]]:
    """(what, seconds per call, elements) for the single NumPy calls the ELU and SGD are made of,
    on arrays the size of the large MLP's first layer: why the ELU avoids masked copies and the SGD
    update avoids a temporary."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((200, 800)) * 1e-3).astype(np.float32)
    out, mask = np.empty_like(x), x >= 0
    weight = rng.standard_normal((800, 3072)).astype(np.float32)
    grad = rng.standard_normal((800, 3072)).astype(np.float32)

    def sgd_with_temporary() -> None:
        np.subtract(weight, 1e-9 * grad, out=weight)  # weight -= lr * grad

    def sgd_in_place() -> None:
        np.multiply(grad, 1.0, out=grad)  # grad *= lr (1.0: the buffer stays the same across repeats)
        np.subtract(weight, grad, out=weight)

    return [
        ("np.copyto(out, x, where=x >= 0), 200 x 800", per_call_seconds(lambda: np.copyto(out, x, where=mask)), x.size),
        ("np.expm1(x, out=out), 200 x 800", per_call_seconds(lambda: np.expm1(x, out=out)), x.size),
        ("np.minimum(x, 0, out=out), 200 x 800", per_call_seconds(lambda: np.minimum(x, 0, out=out)), x.size),
        ("weight -= lr * grad, 800 x 3072", per_call_seconds(sgd_with_temporary, 100), weight.size),
        ("grad *= lr; weight -= grad, 800 x 3072", per_call_seconds(sgd_in_place, 100), weight.size),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--images", type=int, default=60_000, help="training images per configuration")
    args = parser.parse_args()
    print(f"NumPy {np.__version__}: {cpu_model()}")
    columns = [*PHASES, "other"]
    print(f"| hidden, batch | ms per step | {' | '.join(columns)} |")
    print(f"|---|---|{'---|' * len(columns)}")
    for hidden, batch in CONFIGS:
        per_step, phases = profile(hidden, batch, max(50, args.images // batch), args.data_dir)
        shares = " | ".join(f"{1000 * phases[p]:.2f} ({100 * phases[p] / per_step:.0f}%)" for p in columns)
        print(f"| {hidden}, {batch} | {1000 * per_step:.2f} | {shares} |", flush=True)
    print()
    print("| one NumPy call | ms per call | ns per element |")
    print("|---|---|---|")
    for what, seconds, elements in elementwise_costs():
        print(f"| `{what}` | {1000 * seconds:.3f} | {1e9 * seconds / elements:.2f} |")


if __name__ == "__main__":
    main()
