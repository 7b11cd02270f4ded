"""The Ray executor against the local worker, and 100 short jobs through a two-node Ray cluster.

    unshare --net sh -c 'ip link set lo up && .venv/bin/python bench/ray_vs_local.py --data-dir data'

Run it in a private network namespace (Ray advertises the machine's address otherwise). Starts the
API over a SQLite file, then (1) one MLP job on CIFAR-10 through a local worker, and the same job
through a Ray cluster started here (a head and a second node, one CPU each, token authentication)
with the dispatcher: time from submit to running, training steps/s, and their ratio; (2) 100 short
jobs on a tiny generated data set through the cluster: all succeeded exactly once (one attempt, one
Ray submission each), no duplicate points, jobs per minute.
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.net import free_port, wait_until_up
from harness.ray_cluster import only_loopback, start_ray_cluster

MLP = {"model": "torch_mlp", "hidden_units": [800, 600, 400], "optimizer": "adam", "max_steps": 1000,
       "eval_every": 1000, "log_every": 50, "name": "executor comparison"}  # fmt: skip
SHORT = {"model": "torch_mlp", "dataset": "tiny", "hidden_units": [16], "max_steps": 20, "eval_every": 20,
         "batch_size": 20, "preprocessing": "standardize"}  # fmt: skip


def write_tiny_dataset(folder: Path) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("test", 4)):
        for label in range(3):
            target = folder / split / f"class{label}"
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = np.clip(rng.normal(80 * label + 40, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(target / f"{i}.png")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def wait_finished(client: httpx.Client, job_id: int) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)


def wait_registered(database: Path, name_like: str) -> None:
    """Until the executor (worker or dispatcher) is up: its row in the executors table."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            if connection.execute("select count(*) from executors where name like ?", (name_like,)).fetchone()[0]:
                return
        time.sleep(0.2)
    raise TimeoutError(f"no executor {name_like} registered")


def one_job(client: httpx.Client) -> tuple[float, float, str]:
    """(seconds from submit to running, training steps/s, status)."""
    submitted = time.monotonic()
    job_id = client.post("/jobs", json=MLP).raise_for_status().json()["id"]
    while client.get(f"/jobs/{job_id}").json()["status"] == "queued":
        time.sleep(0.05)
    to_running = time.monotonic() - submitted
    done = wait_finished(client, job_id)
    return to_running, float(done["final_metrics"]["steps_per_second"]), done["status"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    if not only_loopback():
        raise SystemExit("run inside a private network namespace: unshare --net sh -c 'ip link set lo up && ...'")
    folder = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    data_dir = folder / "data"
    data_dir.mkdir()
    (data_dir / "cifar10").symlink_to(args.data_dir.resolve() / "cifar10")
    write_tiny_dataset(data_dir / "tiny")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATA_DIR": str(data_dir), "DATABASE_URL": f"sqlite:///{folder}/jobs.db",
           "DOWNLOAD_DATASETS": "false", "OMP_NUM_THREADS": "1", "CHECKPOINT_MIN_SECONDS": "30"}  # fmt: skip
    api = start([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)], env, folder / "api.log")
    wait_until_up(url, api)
    results: dict[str, tuple[float, float, str]] = {}
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            worker = start([sys.executable, "-m", "workers"], env, folder / "worker.log")
            wait_registered(folder / "jobs.db", "%")  # measured from a ready worker, as from a ready dispatcher
            results["local worker"] = one_job(client)
            stop(worker)
            with sqlite3.connect(folder / "jobs.db") as connection:
                connection.execute("delete from executors")  # the stopped worker's row
            cluster = start_ray_cluster(head_cpus=1, worker_cpus=1, worker_gpus=0, log=folder / "ray.log")
            try:
                ray_env = {**env, **cluster.env, "RAY_PYTHON": sys.executable, "DISPATCH_SECONDS": "0.2"}
                dispatcher = start([sys.executable, "-m", "workers.ray_dispatcher"], ray_env, folder / "dispatcher.log")
                wait_registered(folder / "jobs.db", "ray:%")
                results["Ray (2 nodes)"] = one_job(client)
                started = time.monotonic()
                ids = [client.post("/jobs", json={**SHORT, "seed": i}).raise_for_status().json()["id"]
                       for i in range(args.jobs)]  # fmt: skip
                jobs = [wait_finished(client, job_id) for job_id in ids]
                minutes = (time.monotonic() - started) / 60
                submissions = cluster.submissions()
                stop(dispatcher)
            finally:
                cluster.stop()
            points = [client.get(f"/jobs/{job_id}/metrics").json()["points"] for job_id in ids]
    finally:
        stop(api)
    local, ray = results["local worker"], results["Ray (2 nodes)"]
    print("| executor | submit to running (s) | training steps/s | status |")
    print("|---|---|---|---|")
    for name, (to_running, rate, status) in results.items():
        print(f"| {name} | {to_running:.1f} | {rate:.1f} | {status} |")
    print(f"| Ray / local | {ray[0] / local[0]:.2f}x | {ray[1] / local[1]:.2f} | |")
    print()
    ours = [s for s in submissions if s.startswith("cifar-jobs-")]
    succeeded = sum(job["status"] == "succeeded" for job in jobs)
    once = sum(job["attempts"] == 1 for job in jobs)
    stamps = {job["id"]: int(datetime.fromisoformat(job["created_at"]).timestamp() * 1000) for job in jobs}
    per_job = [sum(1 for s in ours if s.startswith(f"cifar-jobs-{j}-{stamps[j]}-")) for j in ids]
    duplicates = sum(len(p) - len({(x["step"], x["split"]) for x in p}) for p in points)
    print(f"{args.jobs} short jobs through the two-node cluster: {succeeded} succeeded, {once} on their first "
          f"attempt, Ray submissions per job {min(per_job)}..{max(per_job)}, duplicate points {duplicates}, "
          f"{args.jobs / minutes:.1f} jobs per minute ({minutes:.1f} min).")  # fmt: skip


if __name__ == "__main__":
    main()
