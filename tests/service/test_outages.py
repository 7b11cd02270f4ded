"""The worker outlives database outages, and `make serve` outlives its worker: real processes, a real
SQLite file held locked, a real PostgreSQL server restarted, a worker killed."""

import contextlib
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
    """Also: two API processes and one sweep driver beside them; a driver killed is started again and takes the
    lease over once the dead one's runs out (SWEEP_LEASE_SECONDS, short here)."""
    env = {"CPU_BF16": "0", "API_WORKERS": "2", "SWEEP_LEASE_SECONDS": "3"}
    serve, url = start_serve(tmp_path, data_dir, database_url, env)
    try:

        def descendants(pid: int) -> list[int]:
            return [pid, *(grandchild for child in children_of(pid) for grandchild in descendants(child))]

        def running(module: bytes) -> list[int]:
            """The processes under `serve` started as `python -m module`."""
            found = []
            for pid in descendants(serve.pid)[1:]:
                with contextlib.suppress(FileNotFoundError):  # it ended since it was listed
                    if b"-m\x00" + module + b"\x00" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        found.append(pid)
            return found

        (first,) = wait_until(lambda: running(b"workers"), 30, "the worker process", every=0.05)
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer would
        wait_for_log(tmp_path / "serve.log", "worker restarted", timeout=30)
        assert serve.poll() is None and httpx.get(f"{url}/healthz").status_code == 200
        with httpx.Client(base_url=url, timeout=10) as client:
            job = client.post("/jobs", json={"model": "numpy_mlp", "max_steps": 5}).json()
            assert wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"
            (uvicorn,) = running(b"uvicorn")
            wait_until(lambda: len(children_of(uvicorn)) >= 2, 30, "two API processes")
            (driver,) = running(b"app.sweeps.driver_process")  # one sweep driver, however many API processes
            os.kill(driver, signal.SIGKILL)  # its lease is not given back: the next one waits for it to run out
            wait_for_log(tmp_path / "serve.log", "sweep driver restarted", timeout=30)
            sweep = {"base": {"model": "numpy_mlp", "max_steps": 5}, "method": "grid",
                     "search": {"learning_rate": {"choices": [0.01, 0.1]}}}  # fmt: skip
            sweep_id = client.post("/sweeps", json=sweep).json()["id"]
            wait_until(lambda: client.get(f"/sweeps/{sweep_id}").json()["status"] == "finished", 90, "the sweep")
            assert len(running(b"app.sweeps.driver_process")) == 1
    finally:
        stop_process(serve)
