"""Preemption on a busy worker: an urgent job's wait, the preempted job's extra time, and its exact resume.

    .venv/bin/python bench/preemption.py --data-dir data

A real API and one local worker on a temporary SQLite file, over the CIFAR-10 in `--data-dir`. A long ConvNet job
(priority 0, seeded, float32 on the CPU) starts; once it has run `--urgent-after` seconds, an urgent torch MLP job
(priority 100) is submitted. Each round does this twice, with `PREEMPTION=false` (the urgent job waits for the long
one's end: the long one runs uninterrupted) and with preemption on (the default), the order alternating between
rounds. It prints:

- the urgent job's wait, from its submission to its start, with preemption and without; the target with it is at
  most the stop's time (the step in progress and the checkpoint) plus 5 s;
- the preempted job's extra time: its attempts' time together against the uninterrupted run's, beside what a
  preemption costs, read from the preempted run's own records: the stop (from the request, in the audit log, to
  the place given, in the job's log), the restart (the second attempt's start to the resume from its checkpoint)
  and the data load (the resume to the data set loaded, from the job's log);
- whether the preempted job's final curve (every point) and weights are those of the uninterrupted run.
"""

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from safetensors.numpy import load

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.net import free_port, wait_until_up
from harness.processes import stop_processes
from harness.waiting import wait_until

ENDED = {"succeeded", "failed", "cancelled", "stopped_early"}
URGENT = {"model": "torch_mlp", "max_steps": 200, "eval_every": 200, "priority": 100, "name": "urgent"}


def long_job(steps: int) -> dict[str, Any]:
    return {"model": "convnet", "max_steps": steps, "batch_size": 32, "eval_every": steps, "log_every": 10,
            "mixed_precision": "off", "seed": 11, "name": "long"}  # fmt: skip


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _log_time(logs: list[str], needle: str, after: int = 0) -> tuple[datetime, int]:
    """The time of the first log line from index `after` holding `needle` (a line starts `2026-12-07 15:20:01,123`),
    and its index."""
    for index in range(after, len(logs)):
        if needle in logs[index]:
            return datetime.strptime(logs[index][:23], "%Y-%m-%d %H:%M:%S,%f").astimezone(), index
    raise RuntimeError(f"no log line with {needle!r}")


def job_when(client: httpx.Client, job_id: int, test: Any, timeout: float, what: str) -> dict[str, Any]:
    """The job once `test(job)` holds (harness.waiting.wait_until, a look every 0.2 s)."""

    def ready() -> dict[str, Any] | None:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}").json()
        return job if test(job) else None

    return wait_until(ready, timeout, f"job {job_id}: {what}", every=0.2)


def one_run(data_dir: Path, steps: int, urgent_after: float, preemption: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {**os.environ, "DATA_DIR": str(data_dir.resolve()), "DATABASE_URL": f"sqlite:///{tmp}/jobs.db",
               "DOWNLOAD_DATASETS": "false", "PREEMPTION": str(preemption).lower(),
               "PREEMPT_MIN_RUN_SECONDS": "0"}  # fmt: skip
        logs = Path(tmp) / "service.log"
        with logs.open("ab") as out:
            api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port)], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            worker = subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_up(url, api)
            with httpx.Client(base_url=url, timeout=30) as client:
                long_id = client.post("/jobs", json=long_job(steps)).json()["id"]
                running = job_when(client, long_id, lambda j: j["status"] == "running", 120, "running")
                while (time.time() - _time(running["started_at"]).timestamp()) < urgent_after:
                    time.sleep(0.1)
                urgent_id = client.post("/jobs", json=URGENT).json()["id"]
                urgent = job_when(client, urgent_id, lambda j: j["started_at"] is not None, 3600, "started")
                done = job_when(client, long_id, lambda j: j["status"] in ENDED, 3600, "its end")
                if done["status"] != "succeeded":
                    raise RuntimeError(f"the long job ended {done['status']}: {done['error']}")
                job_when(client, urgent_id, lambda j: j["status"] in ENDED, 600, "its end")
                attempts = client.get(f"/jobs/{long_id}/attempts").json()["data"]
                points = client.get(f"/jobs/{long_id}/metrics").json()["points"]
                weights = client.get(f"/jobs/{long_id}/model").content
                job_logs = [client.get(f"/jobs/{long_id}/logs", params={"attempt": a["number"]}).text.splitlines()
                            for a in attempts]  # fmt: skip
                audit = client.get("/audit").json()["data"]
        finally:
            stop_processes([worker, api])
    run = {
        "urgent_wait": (_time(urgent["started_at"]) - _time(urgent["created_at"])).total_seconds(),
        "active": sum((_time(a["ended_at"]) - _time(a["started_at"])).total_seconds() for a in attempts),
        "attempts": [a["outcome"] for a in attempts],
        "curve": [(p["split"], p["step"], p["loss"], p["accuracy"]) for p in points],
        # the tensors alone (the file's header names the job)
        "weights": hashlib.sha256(
            b"".join(name.encode() + array.tobytes() for name, array in sorted(load(weights).items()))
        ).hexdigest(),  # fmt: skip
        "attempt_seconds": [
            round((_time(a["ended_at"]) - _time(a["started_at"])).total_seconds(), 1) for a in attempts
        ],  # fmt: skip
    }
    if preemption and len(attempts) == 2:
        requested = _time(next(e["at"] for e in audit if e["action"] == "job.preempt"))
        gave, _ = _log_time(job_logs[0], "gave its place")
        resumed, index = _log_time(job_logs[1], "resumes from its checkpoint")
        loaded, _ = _log_time(job_logs[1], "data set", index)
        run |= {"stop": (gave - requested).total_seconds(),
                "restart": (resumed - _time(attempts[1]["started_at"])).total_seconds(),
                "data_load": (loaded - resumed).total_seconds()}  # fmt: skip
    return run


def median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--steps", type=int, default=300, help="the long ConvNet job's steps")
    parser.add_argument("--urgent-after", type=float, default=20, help="seconds the long job runs before")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    with_it: list[dict[str, Any]] = []
    without: list[dict[str, Any]] = []
    for round_number in range(args.rounds):  # interleaved, the order alternating
        for preemption in (True, False) if round_number % 2 == 0 else (False, True):
            run = one_run(args.data_dir, args.steps, args.urgent_after, preemption)
            (with_it if preemption else without).append(run)
            print(f"round {round_number + 1}, preemption {'on' if preemption else 'off'}: "
                  f"urgent wait {run['urgent_wait']:.1f} s, long job {run['active']:.1f} s, {run['attempts']} "
                  f"{run['attempt_seconds']} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    preempted = [run for run in with_it if run["attempts"] == ["preempted", "succeeded"]]
    if len(preempted) < len(with_it):
        print(f"warning: {len(with_it) - len(preempted)} of {len(with_it)} runs with preemption on were not preempted",
              file=sys.stderr)  # fmt: skip
    reference = without[0]
    same_curve = all(run["curve"] == reference["curve"] for run in [*with_it, *without])
    same_weights = all(run["weights"] == reference["weights"] for run in [*with_it, *without])
    stop, restart, load = (median(preempted, key) for key in ("stop", "restart", "data_load"))
    extra = median(preempted, "active") - median(without, "active")
    print(f"CPU: {model}; {args.rounds} rounds; a {args.steps}-step ConvNet (batch 32, float32), the urgent torch MLP "
          f"submitted after {args.urgent_after:g} s; medians\n")  # fmt: skip
    print("| measure | with preemption | without | target |")
    print("|---|---|---|---|")
    wait_with, wait_without = median(with_it, "urgent_wait"), median(without, "urgent_wait")
    print(f"| urgent job: submit to running | {wait_with:.1f} s | {wait_without:.1f} s "
          f"(ratio {wait_without / wait_with:.1f}) | at most stop + 5 s = {stop + 5:.1f} s: "
          f"{'met' if wait_with <= stop + 5 else 'missed'} |")  # fmt: skip
    print(f"| long job: its attempts' time | {median(preempted, 'active'):.1f} s | {median(without, 'active'):.1f} s "
          f"| extra {extra:+.1f} s, within stop + restart + data load = {stop + restart + load:.1f} s: "
          f"{'met' if extra <= stop + restart + load else 'missed'} |")  # fmt: skip
    print(f"| what a preemption costs | stop {stop:.2f} s, restart {restart:.2f} s, data load {load:.2f} s | | |")
    print(f"| long job's curve ({len(reference['curve'])} points) and weights, against the uninterrupted run | "
          f"curve {'identical' if same_curve else 'DIFFERENT'}, weights "
          f"{'identical' if same_weights else 'DIFFERENT'} | | identical |")  # fmt: skip


if __name__ == "__main__":
    main()
