"""Preemption on a real API server and a real worker with one slot: an urgent job takes a long job's place, and
the long job resumes exactly where it stopped (its curve and weights those of a run never interrupted)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load

from harness.waiting import wait_for_status, wait_for_step, wait_until
from tests.conftest import LONG_JOB, assert_curve_complete, running_service

ENDED = {"succeeded", "failed", "cancelled"}


def _weights(client: object, job_id: int) -> dict[str, np.ndarray]:
    answer = client.get(f"/jobs/{job_id}/model")  # type: ignore[attr-defined]
    assert answer.status_code == 200, answer.text
    return load(answer.content)


def test_an_urgent_job_takes_a_long_jobs_place_which_resumes_exactly(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    settings = {"PREEMPT_MIN_RUN_SECONDS": "1"}
    with running_service(tmp_path, data_dir, database_url, settings) as service:
        service.start_worker()
        with service.client() as client:
            long_job = client.post("/jobs", json={**LONG_JOB, "seed": 7}).json()["id"]
            wait_for_step(client, long_job, 150)
            urgent = client.post("/jobs", json={"model": "numpy_mlp", "max_steps": 20, "priority": 50}).json()["id"]
            waiting = wait_until(lambda: (j := client.get(f"/jobs/{long_job}").json())["status"] == "queued" and j,
                                 60, "the long job back in the queue", every=0.02)  # fmt: skip
            assert waiting["preemptions"] == 1 and waiting["waiting_reason"].startswith("preempted at step "), waiting
            assert f"to make room for job {urgent}, priority 50" in waiting["waiting_reason"]
            done = wait_for_status(client, urgent, ENDED, timeout=60)
            assert done["status"] == "succeeded", done["error"]
            resumed = wait_for_status(client, long_job, ENDED, timeout=180)
            assert resumed["status"] == "succeeded", resumed["error"]
            assert resumed["attempts"] == 2 and resumed["preemptions"] == 1
            assert done["started_at"] < resumed["finished_at"]  # it did not wait for the long job's end
            assert_curve_complete(client, long_job, 1500, 10)
            first, second = client.get(f"/jobs/{long_job}/attempts").json()["data"]
            assert (first["outcome"], second["outcome"]) == ("preempted", "succeeded")
            assert (first["preempted_for"], second["preempted_for"]) == (urgent, None)
            assert first["steps_done"] >= 150 and second["resumed_from_step"] == first["steps_done"]
            assert second["steps_done"] == 1500
            environment = {**os.environ, "CIFAR_JOBS_URL": service.url, "COLUMNS": "400"}
            shown = subprocess.run([sys.executable, "-m", "cli", "status", str(long_job)], capture_output=True,
                                   text=True, timeout=60, env=environment)  # fmt: skip
            assert f"preempted once (GET /jobs/{long_job}/attempts)" in shown.stdout, shown
            copy = client.post(f"/jobs/{long_job}/reproduce").json()["id"]  # the same spec, never interrupted
            assert wait_for_status(client, copy, ENDED, timeout=180)["status"] == "succeeded"
            verdict = client.get(f"/jobs/{copy}/reproduction").json()
            assert verdict["status"] == "identical", verdict
            resumed_weights, uninterrupted = _weights(client, long_job), _weights(client, copy)
            assert resumed_weights.keys() == uninterrupted.keys()
            assert all(np.array_equal(resumed_weights[k], uninterrupted[k]) for k in resumed_weights)
    assert "gave its place at step" in (tmp_path / "logs" / "worker-w.log").read_text()


def test_a_worker_killed_mid_preemption_loses_nothing_and_runs_no_step_twice(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """The worker and its training process killed at once as soon as the preemption is asked for (the audit log
    has it): whether the process gave its place first or not, the jobs end, the long one's curve has every point
    once, and its attempts say how each ended."""
    settings = {"PREEMPT_MIN_RUN_SECONDS": "1", "STALE_AFTER_SECONDS": "3"}
    with running_service(tmp_path, data_dir, database_url, settings) as service:
        doomed = service.start_worker("doomed")
        with service.client() as client:
            long_job = client.post("/jobs", json={**LONG_JOB, "seed": 7}).json()["id"]
            wait_for_step(client, long_job, 150)
            urgent = client.post("/jobs", json={"model": "numpy_mlp", "max_steps": 20, "priority": 50}).json()["id"]
            wait_until(
                lambda: any(e["action"] == "job.preempt" for e in client.get("/audit").json()["data"]),
                30,
                "the preemption asked for",
                every=0.02,
            )
            os.killpg(doomed.pid, signal.SIGKILL)  # worker and child at once
            doomed.wait()
            service.start_worker("rescuer")
            for job_id in (urgent, long_job):
                done = wait_for_status(client, job_id, ENDED, timeout=180)
                assert done["status"] == "succeeded", done["error"]
            assert_curve_complete(client, long_job, 1500, 10)
            attempts = client.get(f"/jobs/{long_job}/attempts").json()["data"]
            assert attempts[0]["outcome"] in ("preempted", "lost_heartbeat") and attempts[-1]["outcome"] == "succeeded"


def test_a_preemption_while_checkpoints_are_written_back_to_back_loses_nothing(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """A checkpoint at every step, so every write of the training process carries one: the request arrives while
    one is written (its flag is read in the next one). The job gives its place with its latest checkpoint, and the
    next attempt resumes from exactly that step: every point once, none missing."""
    settings = {"PREEMPT_MIN_RUN_SECONDS": "1"}
    every_step = {**LONG_JOB, "hidden_units": [256], "max_steps": 200, "checkpoint_every": 1, "seed": 3}
    with running_service(tmp_path, data_dir, database_url, settings) as service:
        service.start_worker()
        with service.client() as client:
            long_job = client.post("/jobs", json=every_step).json()["id"]
            wait_for_step(client, long_job, 50)
            urgent = client.post("/jobs", json={"model": "numpy_mlp", "max_steps": 20, "priority": 50}).json()["id"]
            for job_id in (urgent, long_job):
                done = wait_for_status(client, job_id, ENDED, timeout=180)
                assert done["status"] == "succeeded", done["error"]
            assert_curve_complete(client, long_job, 200, 10)
            first, second = client.get(f"/jobs/{long_job}/attempts").json()["data"]
            assert (first["outcome"], second["outcome"]) == ("preempted", "succeeded")
            assert 50 <= first["steps_done"] < 200 and second["resumed_from_step"] == first["steps_done"]
