"""The `speedrun` kind on this machine: time to 94% through the API, and its training speed against a
plain PyTorch loop of the same network and batch.

    .venv/bin/python bench/speedrun.py --data-dir data                    # both tables (about an hour)
    .venv/bin/python bench/speedrun.py --data-dir data --only api --seeds 0 1 2
    .venv/bin/python bench/speedrun.py --data-dir data --only api --seeds 0 --precision off   # float32
    .venv/bin/python bench/speedrun.py --data-dir data --only speed --rounds 3

`api`: start the API and one worker on a temporary SQLite file, submit `{"model": "speedrun", "seed": S}`
for each seed (one after the other: one worker), and read each job's test accuracy (with the kind's
test-time augmentation) and its `running_seconds` (claim to succeeded: loading the data, fitting the
whitening, training, the final evaluation and storing the model).

`speed`: images per second of the service's training code (`run_job` in a fresh process, evaluation
excluded) and of a plain loop (the same network and precision, the whole data set normalised up front,
random batches by index, no augmentation, no Lookahead, no logging), interleaved in `--rounds` rounds
(the order alternating); the table gives the medians and the ratio (target >= 0.95).
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import in_fresh_process, train_on_cpu
from harness.net import free_port, wait_until_up
from models.data.catalog import load_dataset
from models.data.preprocessing import fit_normalization
from models.networks.speedrun import SpeedrunNet
from models.training.precision import cpu_model
from models.training.torch_setup import use_bf16


def through_api(seeds: list[int], precision: str, data_dir: Path) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "DATA_DIR": str(data_dir.resolve()), "DATABASE_URL": f"sqlite:///{tmp}/jobs.db",
               "DOWNLOAD_DATASETS": "false"}  # fmt: skip
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, start_new_session=True,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, api)
            # every core's threads, as the plain loop has (a job trains with as many as its `cpus`)
            spec = {"model": "speedrun", "mixed_precision": precision, "cpus": os.cpu_count()}
            ids = [httpx.post(f"{url}/jobs", json={**spec, "seed": seed}).json()["id"] for seed in seeds]
            jobs = []
            for job_id in ids:
                while (job := httpx.get(f"{url}/jobs/{job_id}").json())["status"] in ("queued", "running"):
                    time.sleep(2)
                if job["status"] != "succeeded":
                    raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
                metrics = job["final_metrics"]
                print(f"  seed {job['spec']['seed']}: {metrics['test_accuracy']:.4f} in {job['running_seconds']:.0f} s "
                      f"({metrics['precision']}, {metrics['images_per_second']:.0f} images/s)", flush=True)  # fmt: skip
                jobs.append(job)
            return jobs
        finally:
            for proc in (worker, api):
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()


def plain_loop(steps: int, precision: str, data_dir: Path) -> float:
    """Images per second of a textbook loop of the same network, batch and precision."""
    arrays = load_dataset("cifar10", data_dir)
    norm = fit_normalization("standardize", arrays.train_x)
    x_train = torch.from_numpy(norm.apply(arrays.train_x)).contiguous(memory_format=torch.channels_last)
    y_train = torch.from_numpy(arrays.train_y)
    torch.manual_seed(0)
    model = SpeedrunNet().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.85,
                                nesterov=True)  # fmt: skip
    bf16 = use_bf16(precision, torch.device("cpu"), convolutional=True)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(y_train), (1024,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x_train[idx])
        loss = F.cross_entropy(logits.float(), y_train[idx], label_smoothing=0.2, reduction="sum")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return steps * 1024 / (time.perf_counter() - start)


def speed_table(rounds: int, steps: int, precision: str, data_dir: Path) -> None:
    spec = {"model": "speedrun", "max_steps": steps, "eval_every": steps, "log_every": steps, "tta_level": 0,
            "mixed_precision": precision}  # fmt: skip
    service, plain = [], []
    for round_number in range(rounds):
        service_first = round_number % 2 == 0
        if not service_first:
            plain.append(in_fresh_process(plain_loop, steps, precision, data_dir))
        service.append(in_fresh_process(train_on_cpu, spec, data_dir)["images_per_second"])
        if service_first:
            plain.append(in_fresh_process(plain_loop, steps, precision, data_dir))
    ratios = [s / p for s, p in zip(service, plain, strict=True)]
    print("| precision | service images/s | plain loop images/s | ratio | each round |")
    print("|---|---|---|---|---|")
    print(f"| {precision} | {statistics.median(service):.0f} | {statistics.median(plain):.0f} "
          f"| {statistics.median(ratios):.3f} | {', '.join(f'{r:.3f}' for r in ratios)} |", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--only", choices=["api", "speed"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--precision", choices=["auto", "off", "bf16"], default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30, help="steps of each speed measurement")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs: {cpu_model()}")
    if args.only in (None, "speed"):
        speed_table(args.rounds, args.steps, args.precision, args.data_dir)
    if args.only in (None, "api"):
        jobs = through_api(args.seeds, args.precision, args.data_dir)
        accuracies = [job["final_metrics"]["test_accuracy"] for job in jobs]
        seconds = [job["running_seconds"] for job in jobs]
        print("| seed | test accuracy (TTA) | claim to succeeded | precision | training images/s |")
        print("|---|---|---|---|---|")
        for job in jobs:
            m = job["final_metrics"]
            print(f"| {job['spec']['seed']} | {m['test_accuracy']:.4f} | {job['running_seconds'] / 60:.1f} min "
                  f"| {m['precision']} | {m['images_per_second']:.0f} |")  # fmt: skip
        print(f"| mean | {statistics.mean(accuracies):.4f} | {statistics.mean(seconds) / 60:.1f} min | | |")


if __name__ == "__main__":
    main()
