"""Training speed through the service against a plain PyTorch loop over the same in-memory data.

    .venv/bin/python bench/service_vs_plain.py --data-dir data

For each configuration (the MLPs; `--only vit`: the example plugin's small ViT, examples/vit_kind, trained by the
service's torch loop through `torch_kind`): (1) start the API and one worker on a temporary SQLite file,
submit the job, wait for it, and read the training speed (steps per second, evaluation time
excluded) and the peak resident memory of the process that trained; (2) in a fresh process, run a
plain PyTorch loop (float32 tensors prepared up front, random batches by index, no logging, no
evaluation) for the same steps. Each configuration is measured `--rounds` times, the two
interleaved (the order alternating), and the table gives the medians: on a shared host single
measurements move by tens of percent. Prints a Markdown table; the ratio target is >= 0.95.

A second table isolates the helper's loop from the host's drift (the two runs of a round are minutes apart): in
one fresh process, the service's own step (`set_up_torch_training`'s backend: sampling, normalising, the step, the
running sums) and the plain loop's step on a copy of the network, in alternating blocks of `--block-steps` steps
(the order alternating), `--blocks` of each; the ratio is the median of the blocks' ratios.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import in_fresh_process
from harness.net import free_port, wait_until_up
from harness.processes import cpu_seconds
from models.data.catalog import load_dataset
from models.data.preprocessing import fit_normalization
from models.kinds import KINDS, parse_spec
from models.networks.mlp import TorchMLP, TorchMLPConfig
from models.training.denormals import flush_denormals
from models.training.precision import cpu_model

CONFIGS = [  # [100] runs 5000 steps (about 20 s): the assignment's 1400 take 5 s, within the host's noise
    {"model": "torch_mlp", "hidden_units": [100], "optimizer": "sgd", "max_steps": 5000},
    {"model": "torch_mlp", "hidden_units": [800, 600, 400], "optimizer": "adam", "max_steps": 1000},
    # the plugin's network with what a textbook loop does: AdamW at a constant rate, no augmentation, float32
    {"model": "vit", "width": 128, "depth": 4, "heads": 4, "batch_size": 128, "max_steps": 300, "eval_every": 300,
     "optimizer": "adamw", "lr_schedule": "constant", "warmup_steps": 0, "augmentation": "none",
     "mixed_precision": "off"},
]  # fmt: skip
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def through_service(spec: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "DATA_DIR": str(data_dir.resolve()),
            "DATABASE_URL": f"sqlite:///{tmp}/jobs.db",
            "DOWNLOAD_DATASETS": "false",
        }
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "workers"], cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, api)
            # every core's threads, as the plain loop has (a job trains with as many as its `cpus`)
            job = httpx.post(f"{url}/jobs", json={**spec, "cpus": os.cpu_count()}).json()
            others_since: tuple[float, float] | None = None  # (time, CPU seconds of the API and worker)
            while job["status"] in ("queued", "running"):
                if job["status"] == "running" and others_since is None:
                    others_since = (time.monotonic(), cpu_seconds(api.pid) + cpu_seconds(worker.pid))
                time.sleep(0.5)
                job = httpx.get(f"{url}/jobs/{job['id']}").json()
            if job["status"] != "succeeded":
                raise RuntimeError(f"job ended {job['status']}: {job['error']}")
            metrics: dict[str, Any] = job["final_metrics"]
            if others_since is not None:  # what the API and the worker's parent used while the job trained
                used = cpu_seconds(api.pid) + cpu_seconds(worker.pid) - others_since[1]
                metrics["others_cpu_percent"] = 100 * used / (time.monotonic() - others_since[0])
            return metrics
        finally:
            for proc in (worker, api):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()


def plain_step(spec: dict[str, Any], x_train: torch.Tensor, y_train: torch.Tensor) -> Callable[[], None]:
    """One step of a textbook PyTorch loop on `spec`'s network (seeded as the service seeds it): a random batch by
    index, forward, backward, the optimizer's step; no logging, no evaluation."""
    torch.manual_seed(42)
    parsed = parse_spec(spec)
    if spec["model"] == "torch_mlp":
        model: nn.Module = TorchMLP(TorchMLPConfig(3072, tuple(spec["hidden_units"]), 10))
    else:  # a kind's own network, built as the service builds it
        model = KINDS[spec["model"]].build(parsed, 10)
    model.train()
    options = {"weight_decay": parsed.weight_decay} if spec["optimizer"] == "adamw" else {}  # type: ignore[attr-defined]
    optimizer = OPTIMIZERS[spec["optimizer"]](model.parameters(), lr=parsed.learning_rate, **options)  # type: ignore[attr-defined]
    loss_fn, batch = nn.CrossEntropyLoss(), parsed.batch_size

    def step() -> None:
        idx = torch.randint(0, len(y_train), (batch,))
        loss = loss_fn(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def plain_loop(spec: dict[str, Any], data_dir: Path) -> float:
    """Steps per second of a textbook PyTorch loop on the same data and model (the same assignment
    initialisation, and denormals flushed as in every training process of the service)."""
    flush_denormals()
    arrays = load_dataset("cifar10", data_dir)
    norm = fit_normalization("assignment", arrays.train_x)
    x_train = torch.from_numpy(norm.apply(arrays.train_x))  # float32, (50000, 3, 32, 32): 614 MB
    step = plain_step(spec, x_train, torch.from_numpy(arrays.train_y))
    start = time.perf_counter()
    for _ in range(spec["max_steps"]):
        step()
    return float(spec["max_steps"]) / (time.perf_counter() - start)


def steps_in_one_process(spec: dict[str, Any], data_dir: Path, blocks: int, block_steps: int) -> list[float]:
    """Each block's ratio of the service's step rate to the plain loop's, alternating in this process."""
    from models.training.results import StartFrom
    from models.training.torch_setup import set_up_torch_training

    flush_denormals()
    arrays = load_dataset("cifar10", data_dir)
    norm = fit_normalization("assignment", arrays.train_x)
    parsed = parse_spec({**spec, "device": "cpu"})
    kind = KINDS[spec["model"]]
    # the configurations here take flattened images in the service (not `convolutional`), as their kinds say
    service = set_up_torch_training(parsed, lambda: kind.build(parsed, 10), arrays, norm, StartFrom()).backend  # type: ignore[arg-type]
    plain = plain_step(spec, torch.from_numpy(norm.apply(arrays.train_x)), torch.from_numpy(arrays.train_y))

    def rate(step: Callable[[], None]) -> float:
        began = time.perf_counter()
        for _ in range(block_steps):
            step()
        return block_steps / (time.perf_counter() - began)

    for _ in range(3):  # warm-up: memory first taken, kernels chosen
        service.train_step()
        plain()
    ratios = []
    for block in range(blocks):
        if block % 2 == 0:
            service_rate, plain_rate = rate(service.train_step), rate(plain)
        else:
            plain_rate, service_rate = rate(plain), rate(service.train_step)
        ratios.append(service_rate / plain_rate)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    rounds_help = "interleaved measurements of each per configuration (0: the second table only)"
    parser.add_argument("--rounds", type=int, default=3, help=rounds_help)
    parser.add_argument("--only", help="the configurations of this model kind only (torch_mlp, vit)")
    parser.add_argument("--blocks", type=int, default=8, help="alternating blocks of each step in one process")
    parser.add_argument("--block-steps", type=int, default=10, help="steps in each such block")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs: {cpu_model()}")
    print(
        "| configuration | service steps/s | plain loop steps/s | ratio | each round | training process peak RSS "
        "| API + worker CPU while training |"
    )
    print("|---|---|---|---|---|---|---|")
    for spec in [spec for spec in CONFIGS if args.only in (None, spec["model"]) and args.rounds > 0]:
        service_rates: list[float] = []
        plain_rates: list[float] = []
        peak_rss: list[float] = []
        others_cpu: list[float] = []
        for round_number in range(args.rounds):
            service_first = round_number % 2 == 0
            if not service_first:
                plain_rates.append(in_fresh_process(plain_loop, spec, args.data_dir))  # as the worker runs a job
            metrics = through_service(spec, args.data_dir)
            service_rates.append(metrics["steps_per_second"])
            peak_rss.append(metrics["peak_rss_mb"])
            others_cpu.append(metrics.get("others_cpu_percent", 0.0))
            if service_first:
                plain_rates.append(in_fresh_process(plain_loop, spec, args.data_dir))  # as the worker runs a job
        ratios = [s / p for s, p in zip(service_rates, plain_rates, strict=True)]
        shape = (f"hidden {spec['hidden_units']}" if spec["model"] == "torch_mlp" else
                 f"{spec['model']} {spec['depth']} x {spec['width']}")  # fmt: skip
        label = f"{shape}, {spec['optimizer']}, batch {spec.get('batch_size', 200)}, {spec['max_steps']} steps"
        print(
            f"| {label} | {statistics.median(service_rates):.1f} | {statistics.median(plain_rates):.1f} "
            f"| {statistics.median(ratios):.3f} | {', '.join(f'{r:.2f}' for r in ratios)} | {max(peak_rss):.0f} MB "
            f"| {max(others_cpu):.1f}% of a core |",
            flush=True,
        )
    print(f"\nIn one process, alternating blocks of {args.block_steps} steps ({args.blocks} of each):\n")
    print("| configuration | the service's step against the plain loop's (median) | each block |")
    print("|---|---|---|")
    for spec in [spec for spec in CONFIGS if args.only in (None, spec["model"])]:
        ratios = in_fresh_process(steps_in_one_process, spec, args.data_dir, args.blocks, args.block_steps)
        print(f"| {spec['model']}, {spec['optimizer']}, batch {spec.get('batch_size', 200)} | "
              f"{statistics.median(ratios):.3f} | {', '.join(f'{r:.2f}' for r in ratios)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
