"""The CPU fast path: denormals flushed in training processes, bfloat16 and channels-last where they
pay off, recorded on the job; predictions in bfloat16 agree with float32."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.artifacts import unpack_model
from models.kinds import load_predictor, parse_spec
from models.prediction.torch_predictor import TorchPredictor
from models.run import run_job
from models.training.precision import CPU_BF16_ENV, bf16_is_fast_on_cpu, measure_in_subprocess, use_verdict
from models.training.reporting import InMemoryReporter, Split
from models.training.results import DataSource
from models.training.torch_setup import use_bf16
from tests.conftest import ROOT

DENORMAL_PRODUCT = "import numpy as np; print(float(np.float32(1e-38) * np.float32(0.01)))"


def python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_flush_denormals_makes_denormal_results_zero_in_numpy_and_torch() -> None:
    assert float(python(DENORMAL_PRODUCT)) > 0  # the default: a denormal result
    flushed = "from models.training.denormals import flush_denormals; assert flush_denormals(); "
    assert float(python(flushed + DENORMAL_PRODUCT)) == 0.0
    in_torch = "import torch; print((torch.tensor([1e-38]) * 0.01).item())"
    assert float(python(flushed + in_torch)) == 0.0
    new_thread = (
        "import threading; out = []; "
        "t = threading.Thread(target=lambda: out.append(float(np.float32(1e-38) * np.float32(0.01)))); "
        "t.start(); t.join(); print(out[0])"
    )
    assert float(python(flushed + "import numpy as np; " + new_thread)) == 0.0  # threads started later too


class DenormalProbe(InMemoryReporter):
    """Computes a denormal product at every point, i.e. inside the training loop."""

    def __init__(self) -> None:
        super().__init__()
        self.products: list[float] = []

    def point(self, step: int, split: Split, loss: float, accuracy: float) -> None:
        super().point(step, split, loss, accuracy)
        self.products.append(float(np.float32(1e-38) * np.float32(0.01)))


@pytest.mark.parametrize("model", ["numpy_mlp", "torch_mlp"])
def test_training_runs_with_denormals_flushed_and_restores_them_after(data_dir: Path, model: str) -> None:
    probe = DenormalProbe()
    run_job(parse_spec({"model": model, "max_steps": 4, "batch_size": 10, "log_every": 2}), probe, DataSource(data_dir))
    assert probe.products and set(probe.products) == {0.0}
    assert float(np.float32(1e-38) * np.float32(0.01)) > 0  # this process trained in-process: IEEE again


def test_which_runs_use_bfloat16() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not use_bf16("off", cuda, convolutional=True)
    assert use_bf16("bf16", cpu, convolutional=False)
    assert use_bf16("auto", cuda, convolutional=False)
    assert not use_bf16("auto", cpu, convolutional=False)  # the MLPs: float32 on a CPU
    assert use_bf16("auto", cpu, convolutional=True) == bf16_is_fast_on_cpu()


def test_the_probe_answers_from_a_fresh_process() -> None:
    faster, speedup = measure_in_subprocess()
    assert isinstance(faster, bool) and (speedup is None or speedup > 0)


def test_a_verdict_decided_elsewhere_is_used_without_probing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CPU_BF16_ENV, raising=False)
    monkeypatch.setattr("models.training.precision.probe_speedup", lambda: pytest.fail("probed"))
    try:
        for verdict in (True, False):
            use_verdict(verdict)
            assert bf16_is_fast_on_cpu() is verdict
    finally:
        monkeypatch.setattr("models.training.precision._verdict", None)
        bf16_is_fast_on_cpu.cache_clear()


def test_the_worker_hands_its_answer_to_children(monkeypatch: pytest.MonkeyPatch) -> None:
    for given, expected in (("1", True), ("0", False)):
        monkeypatch.setenv(CPU_BF16_ENV, given)
        bf16_is_fast_on_cpu.cache_clear()
        assert bf16_is_fast_on_cpu() is expected
    bf16_is_fast_on_cpu.cache_clear()


@pytest.mark.parametrize("mixed_precision", ["off", "bf16"])
def test_a_conv_job_records_its_precision_and_memory_format(data_dir: Path, mixed_precision: str) -> None:
    spec = parse_spec({"model": "convnet", "max_steps": 4, "batch_size": 8, "eval_every": 4,
                       "mixed_precision": mixed_precision})  # fmt: skip
    result = run_job(spec, InMemoryReporter(), DataSource(data_dir))
    metrics = result.job_metrics()
    assert metrics["precision"] == ("bf16" if mixed_precision == "bf16" else "float32")
    assert metrics["memory_format"] == "channels_last" and metrics["device"] == "cpu"
    assert isinstance(metrics["eval_images_per_second"], float) and metrics["eval_images_per_second"] > 0


def test_bf16_predictions_agree_with_float32(data_dir: Path) -> None:
    spec = {"model": "convnet", "max_steps": 8, "batch_size": 16, "eval_every": 8, "mixed_precision": "off"}
    result = run_job(parse_spec(spec), InMemoryReporter(), DataSource(data_dir))
    assert result.artifact is not None
    artifact = unpack_model(result.artifact)  # trained in float32 (bf16 training is slow on CPUs without it)
    float32 = load_predictor(artifact)
    artifact.spec["mixed_precision"] = "bf16"
    bf16 = load_predictor(artifact)
    assert isinstance(bf16, TorchPredictor) and bf16.bf16
    assert isinstance(float32, TorchPredictor) and not float32.bf16
    images = np.random.default_rng(0).integers(0, 256, size=(64, 3, 32, 32), dtype=np.uint8)
    p16, p32 = bf16.probabilities(images), float32.probabilities(images)
    assert np.allclose(p16.sum(1), 1) and np.abs(p16 - p32).max() < 0.05
    assert (p16.argmax(1) == p32.argmax(1)).mean() >= 0.9
