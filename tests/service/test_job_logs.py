"""GET /jobs/{id}/logs: what a job's training process printed, copied by the local worker, bounded."""

import re

import pytest
from sqlalchemy.orm import Session, sessionmaker

from harness.waiting import wait_for_status, wait_until
from store.logs import MAX_LOG_CHARS, read_log, save_log
from tests.conftest import Service, new_job

TINY = {"model": "torch_mlp", "hidden_units": [16], "batch_size": 50, "max_steps": 40, "eval_every": 20,
        "preprocessing": "standardize"}  # fmt: skip


@pytest.mark.postgresql
def test_logs_of_a_succeeded_and_a_failed_job(service: Service) -> None:
    with service.client() as client:
        good = client.post("/jobs", json=TINY).json()["id"]
        bad = client.post("/jobs", json={**TINY, "dataset": "nowhere"}).json()["id"]
        assert wait_for_status(client, good, {"succeeded", "failed"})["status"] == "succeeded"
        failed = wait_for_status(client, bad, {"succeeded", "failed"})
        assert failed["status"] == "failed" and "\n" not in failed["error"]  # short in the job

        # the training process records its end, then the worker copies its last output (within a second)
        wait_until(lambda: "steps done" in client.get(f"/jobs/{good}/logs").text, 30, "the good job's last lines")
        wait_until(lambda: "nowhere" in client.get(f"/jobs/{bad}/logs").text, 30, "the failed job's last lines")
        logs = client.get(f"/jobs/{good}/logs")
        assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/plain")
        assert logs.headers["x-attempt"] == "1" and logs.headers["x-truncated"] == "false"
        # what it trained on and where, a line per log interval and per evaluation, and how it ended
        assert f"job {good}, attempt 1: torch_mlp on cifar10, 40 steps of 50 images" in logs.text
        assert "data set cifar10: 200 training and 100 test images of 10 classes" in logs.text
        assert "training on the CPU, 1 thread in float32, 49,338 parameters" in logs.text
        assert re.search(r"step \d+/40: train loss [\d.]+ accuracy [\d.]+, [\d.]+ steps/s, \d+ images/s", logs.text)
        assert "step 20/40: test loss" in logs.text and "step 40/40: test loss" in logs.text
        assert f"job {good}: 40 steps done, test_accuracy" in logs.text
        last = client.get(f"/jobs/{good}/logs", params={"tail": 1})
        assert last.text.count("\n") == 1 and last.text in logs.text and last.headers["x-truncated"] == "true"

        bad_logs = client.get(f"/jobs/{bad}/logs").text
        assert f"job {bad} failed:" in bad_logs and "nowhere" in bad_logs

        assert client.get(f"/jobs/{good}/logs", params={"attempt": 2}).status_code == 422
        assert client.get("/jobs/9999/logs").status_code == 404


def test_logs_keep_the_newest_part(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    text = "".join(f"line {i}\n" for i in range(60_000))  # about 530 k characters
    with sessions() as session:
        save_log(session, job_id, 1, text)
        session.commit()
        found = read_log(session, job_id, None)
    assert found is not None and found.truncated and len(found.text) == MAX_LOG_CHARS
    assert text.endswith(found.text)
