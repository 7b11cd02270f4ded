"""The worker outlives database outages, and `make serve` outlives its worker: real processes, a real
SQLite file held locked, a real PostgreSQL server restarted, a worker killed."""

import os
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from harness.postgres import PostgresServer
from harness.waiting import wait_for_log, wait_for_status, wait_for_step, wait_until
from tests.conftest import (
    LONG_JOB,
    TEST_DATABASE,
    Service,
    assert_curve_complete,
    children_of,
    running_service,
    start_serve,
    stop_process,
)


@pytest.mark.skipif(TEST_DATABASE != "sqlite", reason="a SQLite file lock")
def test_a_job_survives_the_database_file_locked_longer_than_the_busy_timeout(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    with running_service(tmp_path, data_dir, database_url, {"SQLITE_BUSY_TIMEOUT_MS": "300"}) as service:
        service.start_worker("w")
        with service.client() as client:
            job = client.post("/jobs", json=LONG_JOB).json()
            wait_for_step(client, job["id"], 150)
            locker = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=10)
            locker.execute("BEGIN EXCLUSIVE")  # nobody else reads or writes now
            try:  # until the worker has met the outage (its busy timeout is 0.3 s)
                wait_for_log(service.log_dir / "worker-w.log", "they stay buffered", timeout=30)
            finally:
                locker.rollback()
                locker.close()
            done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
            assert done["status"] == "succeeded" and done["attempts"] == 1, done["error"]
            assert_curve_complete(client, job["id"], 1500, 10)
        assert service.processes[-1].poll() is None  # the worker is still there


@pytest.mark.postgresql
@pytest.mark.skipif(TEST_DATABASE != "postgresql", reason="restarts the test PostgreSQL server")
def test_a_job_survives_a_postgresql_restart(service: Service, postgres_server: PostgresServer | None) -> None:
    assert postgres_server is not None
    with service.client() as client:
        job = client.post("/jobs", json=LONG_JOB).json()
        wait_for_step(client, job["id"], 150)
        postgres_server.restart()  # every connection dropped mid-job
        done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded" and done["attempts"] == 1, done["error"]
        assert_curve_complete(client, job["id"], 1500, 10)
    assert service.processes[-1].poll() is None


def test_serve_restarts_a_worker_that_died_and_the_api_stays_up(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    serve, url = start_serve(tmp_path, data_dir, database_url, {"CPU_BF16": "0"})
    try:

        def worker_pids() -> list[int]:
            return [pid for pid in children_of(serve.pid)
                    if b"-m\x00workers\x00" in Path(f"/proc/{pid}/cmdline").read_bytes()]  # fmt: skip

        (first,) = wait_until(worker_pids, 30, "the worker process", every=0.05)
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer would
        wait_for_log(tmp_path / "serve.log", "worker restarted", timeout=30)
        assert serve.poll() is None and httpx.get(f"{url}/healthz").status_code == 200
        with httpx.Client(base_url=url, timeout=10) as client:
            job = client.post("/jobs", json={"model": "numpy_mlp", "max_steps": 5}).json()
            assert wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"
    finally:
        stop_process(serve)
