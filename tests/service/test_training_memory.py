"""A training process's memory and checkpoints: a cap on its address space and the OOM killer's
first choice, so running out ends the job with a message; periodic checkpoints spaced out in time."""

import os
import signal
from pathlib import Path

from sqlalchemy import select

from harness.waiting import wait_for_status, wait_until
from store.engine import make_engine, make_session_factory
from store.tables import Artifact
from tests.conftest import running_service

LONG = {"model": "torch_mlp", "hidden_units": [32], "batch_size": 50, "preprocessing": "standardize",
        "max_steps": 1_000_000, "eval_every": 1000, "log_every": 100, "checkpoint_every": 1}  # fmt: skip


def child_pids(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_checkpoint_floor_oom_score_and_a_stop_checkpoint(tmp_path: Path, data_dir: Path, database_url: str) -> None:
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with running_service(tmp_path, data_dir, database_url, {"CHECKPOINT_MIN_SECONDS": "3600"}) as service:
        worker = service.start_worker()
        with service.client() as client:
            job_id = client.post("/jobs", json=LONG).json()["id"]
            wait_for_status(client, job_id, {"running"})
            wait_until(lambda: client.get(f"/jobs/{job_id}").json()["progress"]["step"] >= 300, 60, "step 300")
            with sessions() as session:  # checkpoint_every 1, but none within the floor
                assert session.scalars(select(Artifact.kind).where(Artifact.job_id == job_id)).all() == []
            (child,) = child_pids(worker.pid)
            assert Path(f"/proc/{child}/oom_score_adj").read_text().strip() == "1000"
            assert Path(f"/proc/{worker.pid}/oom_score_adj").read_text().strip() != "1000"
            os.kill(worker.pid, signal.SIGTERM)  # a stop always checkpoints
            worker.wait(30)
            job = wait_for_status(client, job_id, {"queued"})
            with sessions() as session:
                steps = session.scalars(select(Artifact.step).where(Artifact.job_id == job_id)).all()
            assert len(steps) == 1 and steps[0] >= 300 and steps[0] <= job["progress"]["step"] + 100
    engine.dispose()


def test_a_job_over_its_memory_limit_fails_with_a_message(tmp_path: Path, data_dir: Path, database_url: str) -> None:
    with running_service(tmp_path, data_dir, database_url, {"TRAINING_MEMORY_LIMIT_MB": "200"}) as service:
        service.start_worker()
        with service.client() as client:
            # 3072 x 16000 float64 weights alone are 393 MB
            big = {"model": "numpy_mlp", "hidden_units": [16000], "dtype": "float64", "max_steps": 2}
            job_id = client.post("/jobs", json=big).json()["id"]
            job = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=120)
            assert job["status"] == "failed"
            assert job["error"].startswith("out of memory") and "batch_size" in job["error"], job["error"]
            small = client.post("/jobs", json={"model": "numpy_mlp", "hidden_units": [16], "max_steps": 20}).json()
            assert wait_for_status(client, small["id"], {"succeeded", "failed"})["status"] == "succeeded"
