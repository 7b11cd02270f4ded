"""Fair share with real workers: user A queues 50 jobs, then user B queues 5; with two worker processes, each of
B's jobs starts before A's tenth, on PostgreSQL, where SKIP LOCKED claims run side by side (on SQLite one claim
runs at a time, as tests/store/test_fair_share.py shows in process)."""

from datetime import datetime
from pathlib import Path

import pytest

from harness.waiting import wait_for_status, wait_until
from tests.conftest import TEST_DATABASE, running_service

JOB = {"model": "numpy_mlp", "hidden_units": [8], "max_steps": 5, "batch_size": 10, "eval_every": 5}


@pytest.mark.postgresql
@pytest.mark.skipif(TEST_DATABASE != "postgresql", reason="on SQLite: tests/store/test_fair_share.py")
def test_a_late_small_queue_starts_before_an_early_long_one_drains(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    quotas = {"QUOTA_SUBMISSIONS_PER_MINUTE": "100", "QUOTA_QUEUED_JOBS": "100"}
    with running_service(tmp_path, data_dir, database_url, {"API_KEY": "bootstrap", **quotas}) as service:
        with service.client() as client:
            admin = {"Authorization": "Bearer bootstrap"}
            client.headers.update(admin)  # the reads below, as the admin
            tokens = {name: client.post("/users", json={"name": name}, headers=admin).json()["token"] for name in "ab"}
            heads = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
            a_jobs = [client.post("/jobs", json=JOB, headers=heads["a"]).json()["id"] for _ in range(50)]
            b_jobs = [client.post("/jobs", json=JOB, headers=heads["b"]).json()["id"] for _ in range(5)]
            assert len(set(a_jobs + b_jobs)) == 55
            service.start_worker("w1")
            service.start_worker("w2")
            for job in b_jobs:
                assert wait_for_status(client, job, {"succeeded", "failed"}, timeout=180)["status"] == "succeeded"
            tenth = wait_until(
                lambda: (job := client.get(f"/jobs/{a_jobs[9]}", headers=admin).json())["started_at"] and job,
                180,
                "A's tenth job starting",
                every=0.2,
            )

            def started(job_id: int) -> datetime:
                return datetime.fromisoformat(client.get(f"/jobs/{job_id}", headers=admin).json()["started_at"])

            assert all(started(job) < datetime.fromisoformat(tenth["started_at"]) for job in b_jobs)
            workers = {client.get(f"/jobs/{job}", headers=admin).json()["placement"]["worker"] for job in a_jobs[:10]}
            assert workers == {"w1", "w2"}  # both workers claimed, side by side
