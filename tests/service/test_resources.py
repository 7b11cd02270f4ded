"""Resource requests: a job's `gpus` and `cpus`; a worker takes only jobs that fit it, and a job that
fits no running worker waits with the reason in GET /jobs/{id}."""

import importlib.metadata
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from harness.waiting import wait_for_status, wait_until
from store.engine import make_engine
from store.tables import Executor, utcnow
from tests.conftest import ROOT, Service, running_service

TINY = {"model": "numpy_mlp", "hidden_units": [16], "batch_size": 50, "max_steps": 30, "eval_every": 30,
        "preprocessing": "standardize"}  # fmt: skip


def start_worker(service: Service, name: str, gpus: str) -> subprocess.Popen[bytes]:
    """A worker that sees `gpus` as its GPUs (CUDA_VISIBLE_DEVICES; no GPU is used here)."""
    with (service.log_dir / f"worker-{name}.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workers", "--name", name], cwd=ROOT,
                                env={**service.env, "CUDA_VISIBLE_DEVICES": gpus}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    service.processes.append(proc)
    return proc


def wait_for_reason(service: Service, job_id: int, text: str) -> None:
    with service.client() as client:
        wait_until(
            lambda: text in (client.get(f"/jobs/{job_id}").json()["waiting_reason"] or ""),
            60,
            lambda: f"{text!r} in job {job_id}'s waiting reason: {client.get(f'/jobs/{job_id}').json()}",
        )


def test_resource_fields_are_checked(service_without_worker: Service) -> None:
    with service_without_worker.client() as client:
        for bad, field in (({"gpus": 1.5}, "gpus"), ({"gpus": -1}, "gpus"), ({"cpus": 0}, "cpus")):
            answer = client.post("/jobs", json={**TINY, **bad})
            assert answer.status_code == 422 and answer.json()["message"].startswith(field), answer.text
        job = client.post("/jobs", json={**TINY, "gpus": 0.5, "cpus": 2}).json()
        assert job["spec"]["gpus"] == 0.5 and job["spec"]["cpus"] == 2
        assert job["waiting_reason"].startswith("no worker is running")


def test_a_gpu_job_waits_for_a_worker_with_a_gpu_while_others_run(service_without_worker: Service) -> None:
    service = service_without_worker
    cpu_only = start_worker(service, "cpu-only", "")
    with service.client() as client:
        gpu_job = client.post("/jobs", json={**TINY, "gpus": 1}).json()["id"]
        wait_for_reason(service, gpu_job, "needs 1 GPU; the largest running worker has 0")
        other = client.post("/jobs", json=TINY).json()["id"]
        assert wait_for_status(client, other, {"succeeded", "failed"})["status"] == "succeeded"  # not blocked
        assert client.get(f"/jobs/{gpu_job}").json()["status"] == "queued"
        start_worker(service, "one-gpu", "0")
        done = wait_for_status(client, gpu_job, {"succeeded", "failed"})
        assert done["status"] == "succeeded" and done["waiting_reason"] is None
        assert done["executor"] == "local" and done["placement"] == {"worker": "one-gpu"}
        assert client.get(f"/jobs/{other}").json()["spec"]["gpus"] == 0
    assert cpu_only.poll() is None
    assert f"worker one-gpu: job {gpu_job} started" in (service.log_dir / "worker-one-gpu.log").read_text()
    assert f"job {gpu_job} started" not in (service.log_dir / "worker-cpu-only.log").read_text()


def test_a_busy_worker_still_counts_and_executors_says_which_worker_died(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """A busy worker's row stays fresh for the jobs that wait for it; issue 46: `GET /executors` (and `cifar-jobs
    admin executors`, and /metrics) lists three workers, what each runs, and which one was killed."""
    alive_seconds = 3
    with running_service(tmp_path, data_dir, database_url, {"EXECUTOR_ALIVE_SECONDS": str(alive_seconds)}) as service:
        start_worker(service, "busy", "")
        with service.client() as client:
            long_job = client.post("/jobs", json={**TINY, "max_steps": 1_000_000, "eval_every": 1000}).json()["id"]
            wait_for_status(client, long_job, {"running"})
            waiting = client.post("/jobs", json=TINY).json()["id"]
            expired_unless_refreshed = utcnow() + timedelta(seconds=alive_seconds)
            engine = make_engine(database_url)
            try:  # the row a busy worker would have let expire, refreshed while it trains
                wait_until(lambda: seen_at(engine, "busy") > expired_unless_refreshed, 30, "the busy worker's row")
            finally:
                engine.dispose()
            assert client.get(f"/jobs/{waiting}").json()["waiting_reason"] is None
            spare, doomed = start_worker(service, "spare", ""), start_worker(service, "doomed", "")
            assert wait_for_status(client, waiting, {"succeeded", "failed"}, timeout=120)["status"] == "succeeded"

            def executors() -> dict[str, dict[str, Any]]:
                return {executor["name"]: executor for executor in client.get("/executors").json()["data"]}

            wait_until(lambda: len(executors()) == 3, 60, lambda: f"three workers registered: {executors()}")
            doomed.kill()  # kill -9: it says nothing
            doomed.wait()
            wait_until(lambda: not executors()["doomed"]["alive"], 30, lambda: f"doomed seen as dead: {executors()}")
            listed = executors()
            assert listed["busy"]["alive"] and listed["busy"]["running"] == [long_job]
            assert listed["spare"]["alive"] and listed["spare"]["running"] == [] and spare.poll() is None
            assert listed["doomed"]["pid"] == doomed.pid and listed["doomed"]["role"] == "worker"
            assert {e["host"] for e in listed.values()} == {socket.gethostname()}
            assert {e["version"] for e in listed.values()} == {importlib.metadata.version("cifar-jobs")}
            metrics = client.get("/metrics").text
            assert "cifar_executors_alive 2.0" in metrics and "cifar_executors_idle 1.0" in metrics
            cli_env = {**service.env, "CIFAR_JOBS_URL": service.url, "COLUMNS": "200"}
            shown = subprocess.run([sys.executable, "-m", "cli", "admin", "executors"], capture_output=True, text=True,
                                   timeout=60, env=cli_env)  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            lines = {line.split()[1]: line for line in shown.stdout.splitlines() if line.startswith("│")}
            assert " dead " in lines["doomed"] and " alive " in lines["busy"] and f" {long_job} " in lines["busy"]
            assert "2 alive of 3" in shown.stdout
            client.post(f"/jobs/{long_job}/cancel")


def seen_at(engine: Engine, name: str) -> datetime:
    with Session(engine) as session:
        return session.execute(select(Executor.seen_at).where(Executor.name == name)).scalar_one()


def test_a_worker_offers_the_cpus_it_is_given(service_without_worker: Service) -> None:
    """`python -m workers --cpus 1`: a `cpus: 2` job waits, saying why, while a `cpus: 1` job runs."""
    service = service_without_worker
    service.start_process("worker-one-cpu", "workers", "--name", "one-cpu", "--cpus", "1")
    with service.client() as client:
        wide = client.post("/jobs", json={**TINY, "cpus": 2}).json()["id"]
        narrow = client.post("/jobs", json={**TINY, "cpus": 1}).json()["id"]
        done = wait_for_status(client, narrow, {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded", done["error"]
        waiting = client.get(f"/jobs/{wide}").json()
        assert waiting["status"] == "queued"
        assert waiting["waiting_reason"] == "needs 2 CPUs; the largest running worker has 1: it waits for one"


def test_a_job_trains_with_as_many_threads_as_its_cpus(service_without_worker: Service) -> None:
    """Issue 46: a `cpus: 1` job trained with every core's threads under the local worker (one under Ray), so three
    workers on one box oversubscribed it. The worker here has no OMP_NUM_THREADS or OPENBLAS_NUM_THREADS (which the
    test processes set to 1), as a user's has not: the job's `cpus` alone decides, rounded up."""
    service = service_without_worker
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        service.env.pop(name, None)
    service.start_worker()
    torch_job = {**TINY, "model": "torch_mlp"}
    asked = [(torch_job, 1), (torch_job, 1.5), (TINY, 1)]  # NumPy's BLAS too
    with service.client() as client:
        ids = [client.post("/jobs", json={**spec, "cpus": cpus}).json()["id"] for spec, cpus in asked]
        records = []
        for job_id in ids:
            done = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=120)
            assert done["status"] == "succeeded", done["error"]
            records.append(done["reproducibility"]["threads"])
    assert [(r["blas"], r.get("torch")) for r in records] == [(1, 1), (2, 2), (1, None)]
