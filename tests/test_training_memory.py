"""A training process's memory and checkpoints: a cap on its address space and the OOM killer's
first choice, so running out ends the job with a message; periodic checkpoints spaced out in time."""

import os
import signal
import time
from pathlib import Path

from sqlalchemy import select

from models.kinds import parse_spec
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource
from store.attempts import Attempt
from store.engine import make_engine, make_session_factory
from store.tables import Artifact
from tests.conftest import running_service, wait_for_status
from workers.reporter import DatabaseReporter

LONG = {"model": "torch_mlp", "hidden_units": [32], "batch_size": 50, "preprocessing": "standardize",
        "max_steps": 1_000_000, "eval_every": 1000, "log_every": 100, "checkpoint_every": 1}  # fmt: skip


class SpacedCheckpoints(InMemoryReporter):
    def __init__(self, every_nth_ask: int) -> None:
        super().__init__()
        self.asks, self.every_nth_ask = 0, every_nth_ask

    def checkpoint_due(self) -> bool:
        self.asks += 1
        return self.asks % self.every_nth_ask == 0


def test_the_loop_writes_a_periodic_checkpoint_only_when_the_reporter_says_it_is_due(data_dir: Path) -> None:
    spec = parse_spec({**LONG, "max_steps": 40, "eval_every": 20, "log_every": 10, "checkpoint_every": 2})
    reporter = SpacedCheckpoints(every_nth_ask=5)
    run_job(spec, reporter, DataSource(data_dir))
    assert reporter.asks == 19  # steps 2, 4, ..., 38 (none after the last step)
    assert [step for step, _ in reporter.checkpoints] == [10, 20, 30]


def test_the_database_reporter_spaces_checkpoints_in_time() -> None:
    assert DatabaseReporter(None, Attempt(1, 1), 1.0, 3600).checkpoint_due() is False  # type: ignore[arg-type]
    assert DatabaseReporter(None, Attempt(1, 1), 1.0, 0).checkpoint_due() is True  # type: ignore[arg-type]


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
            deadline = time.monotonic() + 60
            while client.get(f"/jobs/{job_id}").json()["progress"]["step"] < 300:
                assert time.monotonic() < deadline
                time.sleep(0.1)
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
