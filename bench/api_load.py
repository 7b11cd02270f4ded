"""API load while workers train: job submissions per second, and GET /jobs/{id}/metrics latency
with 20 concurrent pollers, on SQLite and (with --postgres) on a throwaway PostgreSQL server.

    .venv/bin/python bench/api_load.py --data-dir data [--postgres] [--api-workers 1 2]

Starts the API and 2 workers (real processes, loopback only), submits 2 MLP training jobs on
CIFAR-10 and waits until both train; then (1) 20 pollers fetch the running jobs' curves for
30 s, (2) 16 clients submit jobs for 10 s. Every request loop is bounded in time.
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.net import free_port, wait_until_up
from harness.postgres import start_postgres

TRAINING = {"model": "torch_mlp", "hidden_units": [800, 600, 400], "optimizer": "adam", "max_steps": 100_000,
            "log_every": 10, "eval_every": 500, "priority": 100}  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def poll_metrics(url: str, job_ids: list[int], seconds: float, clients: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def poller(i: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = client.get(f"/jobs/{job_ids[i % len(job_ids)]}/metrics")
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                time.sleep(0.05)  # a poller, not a flood: 20 clients ask about 20 times a second each

    threads = [threading.Thread(target=poller, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def submit_burst(url: str, seconds: float, clients: int) -> int:
    count = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def submitter() -> None:
        nonlocal count
        with httpx.Client(base_url=url, timeout=10) as client:
            while time.monotonic() < deadline:
                client.post("/jobs", json={"model": "numpy_mlp", "priority": -1}).raise_for_status()
                with lock:
                    count += 1

    threads = [threading.Thread(target=submitter) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count


def measure(database_url: str, data_dir: Path, label: str, api_workers: int) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATA_DIR": str(data_dir.resolve()), "DATABASE_URL": database_url}
    api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level",
                            "warning", "--workers", str(api_workers)], cwd=ROOT, env=env,
                           start_new_session=True)  # fmt: skip
    workers = subprocess.Popen([sys.executable, "-m", "workers", "--concurrency", "2"], cwd=ROOT, env=env,
                               start_new_session=True, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until_up(url, api)
        with httpx.Client(base_url=url, timeout=10) as client:
            ids = [client.post("/jobs", json=TRAINING).json()["id"] for _ in range(2)]
            while not all(client.get(f"/jobs/{i}").json()["progress"]["step"] > 20 for i in ids):
                time.sleep(0.5)
        latencies = poll_metrics(url, ids, seconds=30, clients=20)
        submitted = submit_burst(url, seconds=10, clients=16)
        with httpx.Client(base_url=url, timeout=10) as client:
            points = len(client.get(f"/jobs/{ids[0]}/metrics").json()["points"])
            training = all(client.get(f"/jobs/{i}").json()["status"] == "running" for i in ids)
        return (
            f"| {label} | {api_workers} | {submitted / 10:.0f} | {percentile(latencies, 0.5) * 1000:.1f} ms | "
            f"{percentile(latencies, 0.99) * 1000:.1f} ms | {len(latencies)} | {points} | {training} |"
        )
    finally:
        for proc in (workers, api):
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--postgres", action="store_true", help="also measure on a throwaway PostgreSQL server")
    parser.add_argument("--api-workers", type=int, nargs="+", default=[1, 2],
                        help="uvicorn worker processes to measure with (make serve runs 2)")  # fmt: skip
    args = parser.parse_args()
    print(
        "| database | API processes | submissions/s (16 clients, 10 s) | metrics p50 | metrics p99 | metrics requests "
        "(20 pollers, 30 s) | points per curve at the end | both jobs still training |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for api_workers in args.api_workers:
        with tempfile.TemporaryDirectory() as tmp:
            print(measure(f"sqlite:///{tmp}/jobs.db", args.data_dir, "SQLite", api_workers), flush=True)
    if args.postgres:
        server = start_postgres(free_port())
        try:
            for api_workers in args.api_workers:
                print(measure(server.new_database_url(), args.data_dir, "PostgreSQL", api_workers), flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
