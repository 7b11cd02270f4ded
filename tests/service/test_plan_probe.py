"""A plan through the real API and CLI: a probe of real steps when no job of the same shape ran, then the
expected time from the job that did."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.jobs.job_plan import Prober
from harness.processes import resident_mb
from harness.waiting import wait_for_status
from models.cost import longest_wait, run_queue_waits
from tests.conftest import Service, running_service

SPEC = {"model": "torch_mlp", "hidden_units": [64], "batch_size": 50, "max_steps": 400, "eval_every": 200}


@pytest.fixture
def planning_service(tmp_path: Path, data_dir: Path, database_url: str) -> Iterator[Service]:
    """Probes may take a minute here (PLAN_PROBE_SECONDS, 8 by default), so a loaded test machine still probes."""
    with running_service(tmp_path, data_dir, database_url, {"PLAN_PROBE_SECONDS": "60"}) as service:
        service.start_worker()
        yield service


def test_a_plan_probes_then_learns_from_the_job_that_ran(planning_service: Service) -> None:
    service = planning_service
    environment = {**os.environ, "CIFAR_JOBS_URL": service.url, "COLUMNS": "300"}
    with service.client() as client:
        first = client.post("/jobs?dry_run=true", json=SPEC, timeout=60).json()
        assert first["expected_from"].startswith("a probe of 20 steps on the CPU"), first
        assert first["probe_step_seconds"] > 0 and first["probe_peak_memory_mb"] > 100
        assert first["expected_seconds"] > 400 * first["probe_step_seconds"]
        assert first["waiting_reason"] is None and client.get("/jobs").json()["count"] == 0
        job = wait_for_status(client, client.post("/jobs", json=SPEC).json()["id"], {"succeeded", "failed"}, 120)
        assert job["status"] == "succeeded"
        learned = client.post("/jobs?dry_run=true", json={**SPEC, "seed": 5, "max_steps": 800}).json()
        assert learned["expected_from"] == "the median of 1 earlier jobs of the same shape"
        steps_per_second = job["final_metrics"]["steps_per_second"]
        assert learned["expected_seconds"] > 800 / steps_per_second  # its steps at that job's speed, and more
    shown = subprocess.run([sys.executable, "-m", "cli", "submit", "--dry-run", "--model", "torch_mlp",
                            "--set", "hidden_units=[64]", "--set", "batch_size=50"], capture_output=True, text=True,
                           timeout=120, env=environment)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "torch_mlp: 197,322 parameters" in shown.stdout and "expected: " in shown.stdout
    assert "queue: 0 ahead" in shown.stdout
    sweep = {"base": SPEC, "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}}, "method": "random", "trials": 4,
             "early_stopping": {"min_steps": 100}}  # fmt: skip
    planned = subprocess.run([sys.executable, "-m", "cli", "sweeps", "submit", "--dry-run", json.dumps(sweep)],
                             capture_output=True, text=True, timeout=120, env=environment)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    # a third of the trials go on past the evaluation at 200 (the rung at 100): 4 * (2/3 * 200 + 1/3 * 400)
    assert "4 trials, 1,600 steps, about 1,067 with early stopping (successive_halving)" in planned.stdout
    assert "with 2 at a time" in planned.stdout and "executors running now: 1" in planned.stdout
    assert "(from the median of 1 earlier jobs of the same shape)" in planned.stdout
    with service.client() as client:
        assert client.get("/sweeps").json()["count"] == 0


def test_a_probe_past_its_time_is_stopped_and_the_plan_says_so(data_dir: Path) -> None:
    measured, note = Prober(data_dir, timeout_seconds=0.2).run({**SPEC, "model": "torch_mlp", "batch_size": 50})
    assert measured is None and note == "the probe took over 0.2 s (PLAN_PROBE_SECONDS): stopped"
    assert Prober(data_dir, timeout_seconds=0).run(SPEC) == (None, "probes are off (PLAN_PROBE_SECONDS=0)")


def test_a_plan_builds_the_network_outside_the_api_process(service_without_worker: Service) -> None:
    """Issue 40, finding 7: a ResNet18 plan at 256x256 (`probe=false`) grew the API process from 173 MB to 930 MB
    (torch imported, the network built and run there). The count runs in a child process and is remembered."""
    api = service_without_worker.processes[0].pid
    spec = {"model": "resnet18", "input_size": 256, "batch_size": 64}
    with service_without_worker.client() as client:
        assert client.post("/jobs?dry_run=true&probe=false", json={"model": "numpy_mlp"}).status_code == 200
        before = resident_mb(api)
        first = client.post("/jobs?dry_run=true&probe=false", json=spec, timeout=180)
        assert first.status_code == 200, first.text
        assert first.json()["parameters"] == 11_173_962 and first.json()["flops_per_image_forward"] > 10**9
        grown = resident_mb(api) - before
        again = client.post("/jobs?dry_run=true&probe=false", json={**spec, "seed": 3}, timeout=10)
    assert again.status_code == 200 and again.json()["parameters"] == 11_173_962
    assert grown < 100, f"the API process grew by {grown:.0f} MB"  # torch alone is over 300 MB


def test_a_probe_measures_what_its_threads_waited_for_a_cpu_on_a_busy_machine() -> None:
    """Issue 45, point 5: a probe's steps are timed less what they waited for a CPU (Linux's schedstat), so a plan
    made while other processes train does not take their share for the job's. Two busy processes and a busy
    thread on one CPU: the thread runs about a third of the time and waits the rest."""
    cpu = min(os.sched_getaffinity(0))
    spin = f"import os, sys; os.sched_setaffinity(0, {{{cpu}}}); print('ready', flush=True)\nwhile True: pass"
    competitors = [subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE) for _ in range(2)]
    try:
        for competitor in competitors:
            assert competitor.stdout is not None and competitor.stdout.readline() == b"ready\n"
        measured: list[float] = []

        def busy() -> None:
            os.sched_setaffinity(0, {cpu})
            before, began = run_queue_waits(), time.perf_counter()
            while time.perf_counter() - began < 0.6:
                pass
            measured.extend([longest_wait(before, run_queue_waits()), time.perf_counter() - began])

        thread = threading.Thread(target=busy)
        thread.start()
        thread.join(30)
        waited, wall = measured
        assert 0.3 * wall < waited < wall, (waited, wall)
    finally:
        for competitor in competitors:
            competitor.kill()
            competitor.communicate()
