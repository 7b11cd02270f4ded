"""Fault tests on a real API server and real worker processes: kills, crashes, restarts."""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from harness.net import wait_until_up
from harness.waiting import wait_for_exit, wait_for_log, wait_for_status, wait_for_step, wait_until
from models.artifacts import unpack_model
from store.artifacts import read_artifact
from store.engine import make_engine, make_session_factory
from store.tables import ArtifactKind
from tests.conftest import LONG_JOB, ROOT, Service, assert_curve_complete, children_of, start_serve, stop_process


@pytest.mark.postgresql
def test_worker_killed_mid_job_resumes_on_a_new_worker(service: Service) -> None:
    worker = service.processes[-1]
    with service.client() as client:
        job = client.post("/jobs", json=LONG_JOB).json()
        wait_for_step(client, job["id"], 150)
        (child,) = children_of(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)  # the worker only: its child hears of it and checkpoints
        requeued = wait_for_status(client, job["id"], {"queued"}, timeout=30)
        assert requeued["progress"]["step"] >= 150
        wait_for_exit(child, timeout=10)  # no orphan goes on training or writing
        assert client.get(f"/jobs/{job['id']}").json()["progress"] == requeued["progress"]  # nor wrote after it
        service.start_worker("second")
        done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 2 and done["progress"]["step"] == 1500
        assert_curve_complete(client, job["id"], 1500, 10)
    assert "resumes from its checkpoint at step" in (service.log_dir / "worker-second.log").read_text()


# the example plugin's kind (examples/vit_kind, installed into the test environment): one block, 16 tokens
VIT_JOB = {"model": "vit", "width": 32, "depth": 1, "heads": 2, "patch_size": 8, "batch_size": 50, "max_steps": 600,
           "eval_every": 200, "log_every": 10, "checkpoint_every": 50, "warmup_steps": 20, "dropout": 0.1,
           "device": "cpu", "mixed_precision": "off"}  # fmt: skip


def test_a_plugin_kinds_job_killed_mid_run_resumes_exactly(service_without_worker: Service) -> None:
    """The same spec trained through once and with its worker killed mid-run: the resumed job ends with the same
    model (byte for byte) and the same curve. The service's loop gives a plugin's network exact resume."""
    service = service_without_worker
    first = service.start_worker("first")
    with service.client() as client:
        whole = client.post("/jobs", json={**VIT_JOB, "name": "whole"}).json()
        assert wait_for_status(client, whole["id"], {"succeeded", "failed"}, timeout=120)["status"] == "succeeded"
        cut = client.post("/jobs", json={**VIT_JOB, "name": "cut"}).json()
        wait_for_step(client, cut["id"], 120)
        os.kill(first.pid, signal.SIGKILL)  # the worker only: its child checkpoints and hands the job back
        assert wait_for_status(client, cut["id"], {"queued"}, timeout=30)["progress"]["step"] < 600
        service.start_worker("second")
        done = wait_for_status(client, cut["id"], {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded" and done["attempts"] == 2, done["error"]
        models = [unpack_model(client.get(f"/jobs/{job['id']}/model").content) for job in (whole, done)]
        assert models[0].weights.keys() == models[1].weights.keys()
        for name, value in models[0].weights.items():
            assert np.array_equal(value, models[1].weights[name]), name
        curves = [client.get(f"/jobs/{job['id']}/metrics").json()["points"] for job in (whole, done)]
        assert curves[0] == curves[1] and len(curves[0]) == 60 + 3  # train every 10 steps; test at 200, 400, 600
    assert "resumes from its checkpoint at step" in (service.log_dir / "worker-second.log").read_text()


def test_whole_worker_lost_is_requeued_by_heartbeat_and_resumes(service_without_worker: Service) -> None:
    service = service_without_worker
    service.env["STALE_AFTER_SECONDS"] = "3"
    first = service.start_worker("doomed")
    with service.client() as client:
        job = client.post("/jobs", json=LONG_JOB).json()
        wait_for_step(client, job["id"], 150)
        os.killpg(first.pid, signal.SIGKILL)  # worker and child at once: nobody hands the job back
        first.wait()
        assert client.get(f"/jobs/{job['id']}").json()["status"] == "running"  # until the heartbeat goes stale
        service.start_worker("rescuer")
        done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=120)
        assert done["status"] == "succeeded", done["error"]
        assert done["attempts"] == 2
        assert_curve_complete(client, job["id"], 1500, 10)


def test_lost_job_fails_after_max_attempts(service_without_worker: Service) -> None:
    service = service_without_worker
    service.env["STALE_AFTER_SECONDS"] = "2"
    with service.client() as client:
        job = client.post("/jobs", json={**LONG_JOB, "max_attempts": 1}).json()
        doomed = service.start_worker("doomed")
        wait_for_step(client, job["id"], 50)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        service.start_worker("reaper")
        done = wait_for_status(client, job["id"], {"failed", "succeeded", "queued"}, timeout=30)
        assert done["status"] == "failed" and "max_attempts" in done["error"]


def test_sigterm_checkpoints_requeues_and_exits_quickly(service: Service) -> None:
    worker = service.processes[-1]
    with service.client() as client:
        job = client.post("/jobs", json=LONG_JOB).json()
        wait_for_step(client, job["id"], 150)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=10)  # a checkpoint and a hand-back, then exit: well within the deadline
        back = client.get(f"/jobs/{job['id']}").json()
        assert back["status"] == "queued" and back["progress"]["step"] >= 150


def test_a_volley_of_sigterms_still_checkpoints_and_exits(service: Service) -> None:
    """Signals arriving inside the handler (a supervisor and a group kill at once) must not deadlock."""
    worker = service.processes[-1]
    with service.client() as client:
        job = client.post("/jobs", json=LONG_JOB).json()
        wait_for_step(client, job["id"], 50)
        (child,) = children_of(worker.pid)
        for _ in range(20):
            os.killpg(worker.pid, signal.SIGTERM)  # worker and child, again and again
        worker.wait(timeout=10)  # a deadlocked handler would never exit
        wait_for_exit(child, timeout=5)
        back = client.get(f"/jobs/{job['id']}").json()
        assert back["status"] == "queued" and back["progress"]["step"] >= 50


def test_second_sigint_stops_at_once_and_requeues(service: Service) -> None:
    worker = service.processes[-1]
    with service.client() as client:
        job = client.post("/jobs", json={**LONG_JOB, "max_steps": 10**6, "checkpoint_every": 10**6}).json()
        wait_for_step(client, job["id"], 50)
        (child,) = children_of(worker.pid)
        os.kill(child, signal.SIGSTOP)  # a child that cannot stop gracefully: the first SIGINT alone waits 30 s
        worker.send_signal(signal.SIGINT)
        wait_for_log(service.log_dir / "worker-w.log", "SIGINT received")
        worker.send_signal(signal.SIGINT)
        worker.wait(
            timeout=10
        )  # well before GRACEFUL_STOP_SECONDS (30 s by default): the second SIGINT killed the child
        wait_for_exit(child, timeout=5)
        back = client.get(f"/jobs/{job['id']}").json()
        assert back["status"] == "queued", back


def test_a_cancel_the_training_process_cannot_act_on_is_enforced_after_the_grace(
    service_without_worker: Service,
) -> None:
    """A child that cannot read its cancel flag (stopped here; stuck in a call that never returns, elsewhere) is
    killed `STOP_GRACE_SECONDS` after the heartbeat that saw the cancel, and the job ends cancelled. It once
    trained on until its timeout (the Ray executor already stopped such a job)."""
    service = service_without_worker
    service.env["STOP_GRACE_SECONDS"] = "1"  # past one more heartbeat (HEARTBEAT_SECONDS=1): the test runs past both
    worker = service.start_worker("w")
    with service.client() as client:
        job = client.post("/jobs", json={**LONG_JOB, "max_steps": 10**6, "checkpoint_every": 10**6}).json()
        wait_for_step(client, job["id"], 50)
        (child,) = children_of(worker.pid)
        os.kill(child, signal.SIGSTOP)
        assert client.post(f"/jobs/{job['id']}/cancel").json()["status"] == "running"  # asked, not yet done
        done = wait_for_status(client, job["id"], {"cancelled", "failed", "succeeded", "queued"}, timeout=30)
        assert done["status"] == "cancelled", done
        wait_for_exit(child, timeout=5)
    assert worker.poll() is None  # the worker goes on
    assert "s ago and still running; w stops it" in (service.log_dir / "worker-w.log").read_text()


def test_training_child_killed_by_a_signal_fails_the_job_and_worker_goes_on(service: Service) -> None:
    worker = service.processes[-1]
    with service.client() as client:
        doomed = client.post("/jobs", json=LONG_JOB).json()
        wait_for_step(client, doomed["id"], 20)
        (child,) = children_of(worker.pid)
        os.kill(child, signal.SIGSEGV)
        failed = wait_for_status(client, doomed["id"], {"failed", "succeeded"}, timeout=30)
        assert failed["status"] == "failed" and "SIGSEGV" in failed["error"]
        fine = client.post("/jobs", json={**LONG_JOB, "max_steps": 20}).json()
        assert wait_for_status(client, fine["id"], {"succeeded", "failed"}, timeout=60)["status"] == "succeeded"
    assert worker.poll() is None


def test_timeout_fails_the_job(service: Service) -> None:
    with service.client() as client:
        job = client.post("/jobs", json={**LONG_JOB, "max_steps": 10**6, "timeout_s": 3}).json()
        done = wait_for_status(client, job["id"], {"failed", "succeeded"}, timeout=30)
        assert done["status"] == "failed" and "timeout_s=3" in done["error"]


@pytest.mark.postgresql
def test_four_workers_run_forty_jobs_exactly_once(service_without_worker: Service) -> None:
    service = service_without_worker
    tiny = {"model": "numpy_mlp", "hidden_units": [8], "batch_size": 10, "max_steps": 2, "eval_every": 2}
    with service.client() as client:
        ids = [client.post("/jobs", json={**tiny, "seed": i}).json()["id"] for i in range(40)]
        with (service.log_dir / "workers.log").open("ab") as log:
            pool = subprocess.Popen(
                [sys.executable, "-m", "workers", "--concurrency", "4"],
                cwd=ROOT,
                env=service.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        service.processes.append(pool)
        jobs = [wait_for_status(client, i, {"succeeded", "failed"}, timeout=180) for i in ids]
    assert all(j["status"] == "succeeded" for j in jobs)
    assert all(j["attempts"] == 1 for j in jobs)  # claimed once each: a second claim would count a second attempt
    assert len({j["id"] for j in jobs}) == 40


@pytest.mark.postgresql
def test_api_killed_during_a_burst_loses_no_acknowledged_job(service_without_worker: Service) -> None:
    service = service_without_worker
    api = service.processes[0]
    acknowledged: list[tuple[int, int]] = []  # (job id, seed)
    lock = threading.Lock()

    def submit(offset: int) -> None:
        with httpx.Client(base_url=service.url, timeout=5) as client:
            for i in range(offset, offset + 10_000, 1):
                try:
                    response = client.post("/jobs", json={"model": "numpy_mlp", "seed": i})
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    with lock:
                        acknowledged.append((response.json()["id"], i))

    threads = [threading.Thread(target=submit, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(acknowledged) > 20, 30, "21 jobs acknowledged", every=0.01)  # mid-burst
    os.killpg(api.pid, signal.SIGKILL)
    for t in threads:
        t.join()
    api.wait()
    assert len(acknowledged) > 20
    with (service.log_dir / "api2.log").open("ab") as log:
        port = service.url.rsplit(":", 1)[1]
        restarted = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port",
                                      port], cwd=ROOT, env=service.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
    service.processes[0] = restarted
    wait_until_up(service.url, restarted)
    with service.client() as client:
        for job_id, seed in acknowledged:
            job = client.get(f"/jobs/{job_id}")
            assert job.status_code == 200, f"acknowledged job {job_id} is gone"
            assert job.json()["spec"]["seed"] == seed
    stop_process(restarted)


def _checkpoint_step(database_url: str, job_id: int) -> int | None:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            found = read_artifact(session, job_id, ArtifactKind.checkpoint)
    finally:
        engine.dispose()
    return found[0].step if found else None


def test_ctrl_c_on_serve_checkpoints_the_running_job(tmp_path: Path, data_dir: Path, database_url: str) -> None:
    """A terminal's Ctrl-C goes to the whole foreground process group: each child must see it once."""
    serve, url = start_serve(tmp_path, data_dir, database_url, {"FLUSH_SECONDS": "0.2"})
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            job = client.post("/jobs", json={**LONG_JOB, "max_steps": 10**6, "checkpoint_every": 10**6}).json()
            wait_for_step(client, job["id"], 50)
        os.killpg(serve.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert serve.wait(timeout=30) == 0
    finally:
        stop_process(serve)
    step = _checkpoint_step(database_url, job["id"])
    assert step is not None and step >= 50, "the job was killed instead of checkpointed"
