"""The NumPy MLP's hand-written gradients against finite differences and against PyTorch."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.kinds import parse_spec
from models.networks.mlp import TorchMLP, TorchMLPConfig
from models.networks.numpy_mlp import MLP
from models.networks.numpy_modules import (
    CrossEntropyModule,
    ELUModule,
    LinearModule,
    SoftMaxModule,
    softmax_cross_entropy,
)
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource

H = 1e-5


def numeric_grad(f: Callable[[], float], x: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of x (changed in place)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + H
        plus = f()
        x[i] = old - H
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * H)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), 1e-12))


@pytest.mark.parametrize("shape", [(4, 7, 5), (9, 3, 6)])
def test_linear_backward_matches_finite_differences(shape: tuple[int, int, int]) -> None:
    n, d_in, d_out = shape
    rng = np.random.default_rng(n)
    layer = LinearModule(d_in, d_out, rng, dtype=np.float64, std=1.0)
    layer.params["bias"][:] = rng.normal(size=d_out)
    x = rng.normal(size=(n, d_in))
    upstream = rng.normal(size=(n, d_out))

    def loss() -> float:
        return float((layer.forward(x) * upstream).sum())

    layer.forward(x)
    dx = layer.backward(upstream)
    assert dx is not None
    assert rel_error(dx, numeric_grad(loss, x)) < 1e-5
    assert rel_error(layer.grads["weight"].copy(), numeric_grad(loss, layer.params["weight"])) < 1e-5
    assert rel_error(layer.grads["bias"].copy(), numeric_grad(loss, layer.params["bias"])) < 1e-5


def test_elu_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 11)) * 3
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink at 0, where the derivative jumps
    upstream = rng.normal(size=x.shape)
    elu = ELUModule()
    elu.forward(x)
    dx = elu.backward(upstream)
    assert rel_error(dx, numeric_grad(lambda: float((elu.forward(x) * upstream).sum()), x)) < 1e-6


def test_elu_forward_is_x_or_exp_minus_one() -> None:
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 1000.0]])
    np.testing.assert_allclose(ELUModule().forward(x), [[np.exp(-2) - 1, np.exp(-0.5) - 1, 0, 0.5, 1000]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elu_equals_its_branch_by_branch_definition_bit_for_bit(dtype: type) -> None:
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(size=500) * 1e-3, rng.normal(size=500) * 5, [0.0, -0.0, 800.0, -800.0]])
    x = x.astype(dtype).reshape(4, -1)
    upstream: np.ndarray = rng.normal(size=x.shape).astype(dtype)
    elu = ELUModule()
    out = elu.forward(x)
    dx = elu.backward(upstream)
    with np.errstate(over="ignore"):  # expm1 of the large positives, which the definition does not take
        negative_branch = np.expm1(x)
    assert np.array_equal(out, np.where(x >= 0, x, negative_branch))
    assert np.array_equal(dx, upstream * np.where(x >= 0, dtype(1), negative_branch + 1))
    assert out.dtype == dx.dtype == dtype


def test_softmax_backward_matches_finite_differences_and_survives_large_inputs() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 10))
    upstream = rng.normal(size=x.shape)
    softmax = SoftMaxModule()
    softmax.forward(x)
    dx = softmax.backward(upstream)
    assert rel_error(dx, numeric_grad(lambda: float((softmax.forward(x) * upstream).sum()), x)) < 1e-5
    big = SoftMaxModule().forward(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(big, [[0.5, 0.5, 0.0]])


@pytest.mark.parametrize("as_one_hot", [False, True])
def test_cross_entropy_backward_matches_finite_differences(as_one_hot: bool) -> None:
    rng = np.random.default_rng(3)
    probs = rng.uniform(0.05, 1, size=(7, 4))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=7)
    targets = np.eye(4)[labels] if as_one_hot else labels
    ce = CrossEntropyModule()
    expected = -np.log(probs[np.arange(7), labels]).mean()
    assert ce.forward(probs, targets) == pytest.approx(expected)
    grad = ce.backward(probs, targets)
    assert rel_error(grad, numeric_grad(lambda: ce.forward(probs, targets), probs)) < 1e-5


def test_fused_softmax_cross_entropy_equals_the_two_modules() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(8, 10))
    labels = rng.integers(0, 10, size=8)
    loss, probs, grad = softmax_cross_entropy(logits, labels)
    softmax, ce = SoftMaxModule(), CrossEntropyModule()
    p = softmax.forward(logits)
    assert loss == pytest.approx(ce.forward(p, labels))
    np.testing.assert_allclose(probs, p)
    np.testing.assert_allclose(grad, softmax.backward(ce.backward(p, labels)), atol=1e-12)


def test_whole_mlp_backward_matches_finite_differences() -> None:
    rng = np.random.default_rng(5)
    mlp = MLP(6, [5, 4], 3, seed=0, dtype=np.float64)
    for lin in mlp.linears:  # larger weights than the 1e-4 default so every path matters
        lin.params["weight"][:] = rng.normal(size=lin.params["weight"].shape)
        lin.params["bias"][:] = rng.normal(size=lin.params["bias"].shape)
    x = rng.normal(size=(4, 6))
    labels = rng.integers(0, 3, size=4)

    def loss() -> float:
        return softmax_cross_entropy(mlp.forward(x), labels)[0]

    _, _, dlogits = softmax_cross_entropy(mlp.forward(x), labels)
    mlp.backward(dlogits)
    for lin in mlp.linears:
        for name in ("weight", "bias"):
            assert rel_error(lin.grads[name].copy(), numeric_grad(loss, lin.params[name])) < 1e-5


def test_same_weights_in_pytorch_give_the_same_output_and_gradients() -> None:
    rng = np.random.default_rng(6)
    mlp = MLP(3072, [100, 50], 10, seed=1)
    for lin in mlp.linears:
        lin.params["weight"][:] = rng.normal(0, 0.05, size=lin.params["weight"].shape)
    x = rng.normal(0, 50, size=(16, 3072)).astype(np.float32)
    labels = rng.integers(0, 10, size=16)
    torch_mlp = TorchMLP(TorchMLPConfig(3072, (100, 50), 10))
    torch_mlp.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in mlp.state_dict().items()})

    logits = mlp.forward(x)
    loss, _, dlogits = softmax_cross_entropy(logits, labels)
    mlp.backward(dlogits)
    torch_logits = torch_mlp(torch.from_numpy(x))
    torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.from_numpy(labels))
    torch_loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated

    assert rel_error(logits, torch_logits.detach().numpy()) < 1e-5
    assert loss == pytest.approx(torch_loss.item(), rel=1e-5)
    grads = {f"layers.{2 * i}.{n}": lin.grads[n] for i, lin in enumerate(mlp.linears) for n in ("weight", "bias")}
    for name, param in torch_mlp.named_parameters():
        assert param.grad is not None
        assert rel_error(grads[name], param.grad.numpy()) < 1e-4, name  # float32 rounding, relative to scale


def test_tiny_dataset_is_fitted_to_full_training_accuracy(data_dir: Path) -> None:
    spec = {
        "model": "numpy_mlp",
        "hidden_units": [64],
        "learning_rate": 0.05,
        "batch_size": 50,
        "max_steps": 300,
        "eval_every": 100,
        "log_every": 50,
        "preprocessing": "standardize",
    }
    reporter = InMemoryReporter()
    result = run_job(parse_spec(spec), reporter, DataSource(data_dir))
    last_train = [p for p in reporter.points if p[1] == "train"][-1]
    assert last_train[3] == 1.0
    assert result.metrics["test_accuracy"] >= 0.95


def test_numpy_path_does_not_import_torch(data_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from models.run import run_job; from models.kinds import parse_spec; "
        "from models.training.results import DataSource; "
        "from models.training.reporting import InMemoryReporter; "
        "spec = {'model': 'numpy_mlp', 'max_steps': 3, 'batch_size': 10}; "
        f"run_job(parse_spec(spec), InMemoryReporter(), DataSource(Path({str(data_dir)!r}))); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
