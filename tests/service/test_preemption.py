"""Preemption on a real API server and a real worker with one slot: an urgent job takes a long job's place, and
the long job resumes exactly where it stopped (its curve and weights those of a run never interrupted)."""

from pathlib import Path

import numpy as np
from safetensors.numpy import load

from harness.waiting import wait_for_status, wait_for_step
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
            done = wait_for_status(client, urgent, ENDED, timeout=60)
            assert done["status"] == "succeeded", done["error"]
            during = client.get(f"/jobs/{long_job}").json()
            assert during["status"] in ("queued", "running") and during["preemptions"] == 1, during
            resumed = wait_for_status(client, long_job, ENDED, timeout=180)
            assert resumed["status"] == "succeeded", resumed["error"]
            assert resumed["attempts"] == 2 and resumed["preemptions"] == 1
            assert done["started_at"] < resumed["finished_at"]  # it did not wait for the long job's end
            assert_curve_complete(client, long_job, 1500, 10)
            first, second = client.get(f"/jobs/{long_job}/attempts").json()["data"]
            assert (first["outcome"], second["outcome"]) == ("preempted", "succeeded")
            assert first["steps_done"] >= 150 and second["resumed_from_step"] == first["steps_done"]
            assert second["steps_done"] == 1500
            copy = client.post(f"/jobs/{long_job}/reproduce").json()["id"]  # the same spec, never interrupted
            assert wait_for_status(client, copy, ENDED, timeout=180)["status"] == "succeeded"
            verdict = client.get(f"/jobs/{copy}/reproduction").json()
            assert verdict["status"] == "identical", verdict
            resumed_weights, uninterrupted = _weights(client, long_job), _weights(client, copy)
            assert resumed_weights.keys() == uninterrupted.keys()
            assert all(np.array_equal(resumed_weights[k], uninterrupted[k]) for k in resumed_weights)
    assert "gave its place at step" in (tmp_path / "logs" / "worker-w.log").read_text()
