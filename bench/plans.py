"""How good a plan's expected time is: for each of the report's runs (`POST /reports/assignment`'s specs), the
plan from the probe alone and the plan after one job of the same shape ran, against the job's actual wall time;
and how long a plan takes to answer.

    .venv/bin/python bench/plans.py --data-dir data [--convnet-steps 500] [--resnet-steps 500] [--probes 3]
                                    [--figures 1,2,3,4,5,6]

It starts the API and one worker on a temporary SQLite file over the real CIFAR-10 (`make data`), and waits for
the worker to be ready (its start-up would otherwise share the CPU with the first probes). For each run:
`--probes` plans with a probe (no job of its shape has run yet: each probes; their answer times go into the p95),
then a shorter job of the same shape (another seed, a quarter of the steps), then a plan (from that job), then the
run itself. The actual time is the job's `running_seconds` (claimed to ended), which is what a plan predicts. The
ConvNet and ResNet18 are cut to `--convnet-steps`/`--resnet-steps` as the report route cuts them (CPU time);
the MLPs run the report's steps. Targets: within 25% from history, within a factor of 2 from the probe, plans
answered within 10 s p95. Prints a Markdown table.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.reports.runs import full_spec, report_runs
from harness.net import free_port, wait_until_up
from harness.processes import stop_processes
from models.training.precision import cpu_model


def wait_for_end(client: httpx.Client, job_id: int) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} ended {job['status']}: {job['error']}")
            return job
        time.sleep(0.5)


def timed_plan(client: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    answer = client.post("/jobs", params={"dry_run": "true"}, json=spec, timeout=120)
    answer.raise_for_status()
    return answer.json(), time.monotonic() - started


def ratio(expected: float | None, actual: float) -> str:
    return "-" if expected is None else f"{expected:.0f} s ({expected / actual:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--convnet-steps", type=int, default=500)
    parser.add_argument("--resnet-steps", type=int, default=500)
    parser.add_argument("--probes", type=int, default=3, help="probed plans per run (their answer times)")
    parser.add_argument("--figures", default="1,2,3,4,5,6", help="the report's figures whose runs to plan and run")
    args = parser.parse_args()
    figures = args.figures.split(",")
    runs = [run for run in report_runs(args.data_dir, args.convnet_steps, args.resnet_steps) if run.figure in figures]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "DATA_DIR": str(args.data_dir.resolve()), "DATABASE_URL": f"sqlite:///{tmp}/jobs.db",
               "DOWNLOAD_DATASETS": "false"}  # fmt: skip
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level",
                                "warning"], cwd=ROOT, env=env, start_new_session=True)  # fmt: skip
        worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, start_new_session=True,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
        rows, answer_times, misses = [], [], []
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, api)
            with httpx.Client(base_url=url, timeout=30) as client:
                # the worker's start-up (it times bfloat16 on this CPU when the store has no verdict) would share
                # the CPU with the first probes: plan once it waits for jobs
                deadline = time.monotonic() + 300
                while client.post("/jobs", params={"dry_run": "true", "probe": "false"},
                                  json={"model": "torch_mlp"}).json()["waiting_reason"]:  # fmt: skip
                    if time.monotonic() > deadline:
                        raise TimeoutError("the worker did not start in 300 s")
                    time.sleep(0.5)
                for run in runs:
                    spec = full_spec(run).model_dump(mode="json")
                    probed = None
                    for _ in range(args.probes):
                        probed, seconds = timed_plan(client, spec)
                        answer_times.append(seconds)
                    assert probed is not None
                    if probed["probe_step_seconds"] is None:
                        misses.append(f"figure {run.figure}: {probed['note']}")
                    shorter = {**spec, "seed": spec["seed"] + 1, "max_steps": max(1, spec["max_steps"] // 4)}
                    wait_for_end(client, client.post("/jobs", json=shorter).json()["id"])
                    learned, seconds = timed_plan(client, spec)
                    answer_times.append(seconds)
                    job = wait_for_end(client, client.post("/jobs", json=spec).json()["id"])
                    actual = float(job["running_seconds"])
                    rows.append((run, spec, probed["expected_seconds"], learned["expected_seconds"], actual))
                    print(f"figure {run.figure}: actual {actual:.1f} s, probe {probed['expected_seconds']}, "
                          f"history {learned['expected_seconds']}", file=sys.stderr, flush=True)  # fmt: skip
        finally:
            stop_processes([worker, api], timeout=60)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; one worker; SQLite\n")
    print("| figure | run | steps | actual | expected from the probe (ratio) | from one earlier job (ratio) |")
    print("|---|---|---|---|---|---|")
    for run, spec, from_probe, from_history, actual in rows:
        print(f"| {run.figure} | {run.title} | {spec['max_steps']:,} | {actual:.0f} s | {ratio(from_probe, actual)} "
              f"| {ratio(from_history, actual)} |")  # fmt: skip
    within = sum(1 for *_, h, a in rows if h is not None and abs(h / a - 1) <= 0.25)
    probe_within = sum(1 for *_, p, _h, a in rows if p is not None and 0.5 <= p / a <= 2)
    p95 = statistics.quantiles(answer_times, n=20)[-1] if len(answer_times) > 1 else answer_times[0]
    print(f"\nfrom history within 25%: {within} of {len(rows)}; from the probe within a factor of 2: {probe_within} "
          f"of {len(rows)}; plans answered in {statistics.median(answer_times):.2f} s median, {p95:.2f} s p95 "
          f"({len(answer_times)} plans, {len(runs) * args.probes} with a probe)")  # fmt: skip
    for miss in misses:
        print(f"no probe for {miss}")


if __name__ == "__main__":
    main()
