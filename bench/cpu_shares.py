"""Several local workers on one machine keep to their CPU shares: each job trains with as many threads as its `cpus`.

    .venv/bin/python bench/cpu_shares.py --data-dir data [--rounds 2] [--steps 300]

One API on a temporary SQLite file; per scenario, its workers (`python -m workers --cpus N`) and one job each, all
submitted at once: the PyTorch MLP of the report's deep run (800-600-400, Adam, batch 200) on CIFAR-10. Each job's
training speed is its own `steps_per_second`. The reference is one job alone with one CPU (one thread), measured in
the same round; "every core's threads" are the jobs asking for `cpus` = this machine's cores, which is how every
local job trained before a job's `cpus` set its threads (each worker offering that many, so the machine is
oversubscribed as it was then). Scenarios run in interleaved rounds; medians.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ray_vs_local import wait_registered  # noqa: E402
from harness.net import free_port, wait_until_up  # noqa: E402
from harness.processes import stop_processes  # noqa: E402
from models.training.precision import cpu_model  # noqa: E402

MLP = {"model": "torch_mlp", "hidden_units": [800, 600, 400], "optimizer": "adam", "learning_rate": 1e-4,
       "batch_size": 200, "log_every": 50, "checkpoint_every": 100_000}  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    jobs: int
    cpus: float  # each job's, and what each worker offers


def scenarios(cores: int) -> list[Scenario]:
    return [
        Scenario("alone, 1 CPU (the reference)", 1, 1),
        Scenario("alone, every core's threads", 1, cores),
        Scenario(f"{cores} at once, 1 CPU each", cores, 1),
        Scenario(f"{cores} at once, every core's threads each (as before)", cores, cores),
        Scenario(f"{cores + 1} at once, 1 CPU each (one worker more than cores)", cores + 1, 1),
        Scenario(f"{cores + 1} at once, every core's threads each (as before)", cores + 1, cores),
    ]


def run_scenario(
    url: str, env: dict[str, str], database: Path, scenario: Scenario, steps: int, tag: str
) -> list[float]:
    """Each job's steps/s, its workers started for it and stopped after."""
    names = [f"{tag}-{i}" for i in range(scenario.jobs)]
    workers = [subprocess.Popen([sys.executable, "-m", "workers", "--name", name, "--cpus", f"{scenario.cpus:g}"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True) for name in names]  # fmt: skip
    try:
        for name in names:
            wait_registered(database, name)
        with httpx.Client(base_url=url, timeout=30) as client:
            spec = {**MLP, "max_steps": steps, "eval_every": steps, "cpus": scenario.cpus}
            ids = [client.post("/jobs", json=spec).raise_for_status().json()["id"] for _ in names]
            speeds = []
            for job_id in ids:
                while (job := client.get(f"/jobs/{job_id}").json())["status"] in ("queued", "running"):
                    time.sleep(0.5)
                if job["status"] != "succeeded":
                    raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
                speeds.append(float(job["final_metrics"]["steps_per_second"]))
            return speeds
    finally:
        stop_processes(workers, report_slow=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"CPU: {cpu_model()}; {args.rounds} interleaved rounds, medians; each job {args.steps} steps "
          "of the 800-600-400 MLP (Adam, batch 200)\n")  # fmt: skip
    measured: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "jobs.db"
        port = free_port()
        env: dict[str, Any] = {**os.environ, "DATA_DIR": str(args.data_dir.resolve()), "DOWNLOAD_DATASETS": "false",
                               "DATABASE_URL": f"sqlite:///{database}", "WORKER_POLL_SECONDS": "0.2"}  # fmt: skip
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(name, None)  # the jobs' `cpus` alone decide
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port),
                                "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, api, timeout=60)
            for round_number in range(args.rounds):
                order = scenarios(cores)
                order = order if round_number % 2 == 0 else order[::-1]
                for index, scenario in enumerate(order):
                    tag = f"r{round_number}s{index}"
                    speeds = run_scenario(url, env, database, scenario, args.steps, tag)
                    measured.setdefault(scenario.name, []).extend(speeds)
                    print(f"  round {round_number + 1}: {scenario.name}: "
                          f"{', '.join(f'{s:.1f}' for s in speeds)} steps/s", flush=True)  # fmt: skip
        finally:
            stop_processes([api], report_slow=False)
    reference = statistics.median(measured[scenarios(cores)[0].name])
    print(
        "\n| jobs at once | threads per job | steps/s per job (median) | all jobs' steps/s | per job / alone, 1 CPU |"
    )
    print("|---|---|---|---|---|")
    for scenario in scenarios(cores):
        each = statistics.median(measured[scenario.name])
        print(f"| {scenario.name} | {int(scenario.cpus)} | {each:.1f} | {each * scenario.jobs:.1f} | "
              f"{each / reference:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
