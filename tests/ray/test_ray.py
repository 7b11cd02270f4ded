"""The Ray executor against a real two-node Ray cluster (token authentication, loopback only).

Run by `make test-ray`, inside a private network namespace; elsewhere these tests skip, since Ray
would advertise the machine's network address."""

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from harness.ray_cluster import RayCluster, only_loopback, start_ray_cluster
from harness.s3_server import S3Server
from harness.waiting import wait_for_status, wait_until
from store.engine import make_engine, make_session_factory
from store.tables import Artifact, MetricPoint
from tests.conftest import ROOT, Service, running_service, stop_process, with_secret_files

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(not only_loopback(), reason="needs a private network namespace: `make test-ray`"),
]

TINY = {"model": "numpy_mlp", "hidden_units": [16], "batch_size": 50, "max_steps": 60, "eval_every": 30,
        "preprocessing": "standardize"}  # fmt: skip
LONG = {**TINY, "max_steps": 1_000_000, "eval_every": 1000, "log_every": 50, "checkpoint_every": 200}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    started = start_ray_cluster(head_cpus=2, worker_cpus=1, worker_gpus=1)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def ray_service(tmp_path: Path, data_dir: Path, database_url: str, cluster: RayCluster) -> Iterator[Service]:
    with running_service(tmp_path, data_dir, database_url, cluster.env) as service:
        start_dispatcher(service, cluster)
        yield service


def start_dispatcher(service: Service, cluster: RayCluster, name: str = "dispatcher") -> subprocess.Popen[bytes]:
    # RAY_PYTHON left at its default: the dispatcher's own interpreter (this project's environment)
    env = {**service.env, **cluster.env, "DISPATCH_SECONDS": "0.3", "STOP_GRACE_SECONDS": "2",
           "LOGS_EVERY_SECONDS": "1", "SYSTEM_METRICS_SECONDS": "0.2"}  # fmt: skip
    with (service.log_dir / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "workers.ray_dispatcher"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    service.processes.append(proc)
    return proc


def sid_of(job: dict[str, Any], attempt: int = 1) -> str:
    """The dispatcher's submission id for this job's attempt (workers.ray_dispatcher.submission_id)."""
    return f"cifar-jobs-{job['id']}-{int(datetime.fromisoformat(job['created_at']).timestamp() * 1000)}-{attempt}"


def wait_for_logs(client: httpx.Client, job_id: int, text: str, attempt: int | None = None) -> str:
    params = {"attempt": attempt} if attempt else {}
    logs = ""

    def holds_text() -> str | None:
        nonlocal logs
        logs = client.get(f"/jobs/{job_id}/logs", params=params).text
        return logs if text in logs else None

    return wait_until(holds_text, 60, lambda: f"{text!r} in job {job_id}'s logs: {logs[-2000:]}", every=0.2)


def test_a_cluster_without_token_auth_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    done = subprocess.run([sys.executable, "-m", "workers.ray_dispatcher"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "RAY_AUTH_MODE=token" in done.stderr


def test_jobs_spread_over_both_nodes_gpu_jobs_go_to_the_gpu_node(ray_service: Service, cluster: RayCluster) -> None:
    with ray_service.client() as client:
        # long enough that all three run at once (torch's: its import and pace): two fit on the head (2 CPUs), the
        # third on the other node
        spread = {**TINY, "model": "torch_mlp", "max_steps": 1500, "eval_every": 750}
        ids = [client.post("/jobs", json=spread).json()["id"] for _ in range(3)]
        gpu = client.post("/jobs", json={**TINY, "gpus": 1, "cpus": 0.5}).json()["id"]
        too_big = client.post("/jobs", json={**TINY, "gpus": 2}).json()["id"]
        for job_id in [*ids, gpu]:
            done = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=180)
            assert done["status"] == "succeeded", (done["error"], ray_service.logs())
        waiting = client.get(f"/jobs/{too_big}").json()
        assert waiting["status"] == "queued"
        assert waiting["waiting_reason"].startswith("needs 2 GPUs; the largest running worker has 1")
        logs = wait_for_logs(client, gpu, f"job {gpu}: 60 steps done")  # copied once the Ray job has ended
        assert f"job {gpu}, attempt 1 on" in logs and "CUDA_VISIBLE_DEVICES=0" in logs  # the GPU Ray gave it
        points = client.get(f"/jobs/{ids[0]}/metrics").json()["points"]
        assert [p["step"] for p in points if p["split"] == "test"] == [750, 1500]
        samples = client.get(f"/jobs/{ids[0]}/system").json()["samples"]  # written by the process on its node
        assert samples and all(s["attempt"] == 1 and s["rss_mb"] > 20 and s["cpu"] > 0 for s in samples)
        record = client.get(f"/jobs/{ids[0]}").json()["reproducibility"]  # the Ray node's record
        assert record["data"]["dataset"] == "cifar10" and record["packages"]["torch"] and record["cpu"]
        client.post(f"/jobs/{too_big}/cancel")
        jobs = {job_id: client.get(f"/jobs/{job_id}").json() for job_id in [*ids, gpu]}
    submitted = cluster.submissions()
    nodes = {submitted[sid_of(jobs[job_id])]["driver_node_id"] for job_id in ids}
    assert len(nodes) == 2, nodes  # three one-CPU jobs at once: two fit on the head, one on the other node
    assert [submitted[sid_of(jobs[gpu])]["driver_node_id"]] == cluster.gpu_node_ids()
    assert jobs[gpu]["executor"] == "ray"
    assert jobs[gpu]["placement"] == {"node": cluster.gpu_node_ids()[0], "ray_submission_id": sid_of(jobs[gpu])}


def test_cancel_and_timeout_end_ray_jobs(ray_service: Service) -> None:
    with ray_service.client() as client:
        cancelled = client.post("/jobs", json=LONG).json()["id"]
        wait_for_status(client, cancelled, {"running"}, timeout=120)
        client.post(f"/jobs/{cancelled}/cancel")
        done = wait_for_status(client, cancelled, {"cancelled", "failed", "succeeded"}, timeout=120)
        assert done["status"] == "cancelled"
        timed = client.post("/jobs", json={**LONG, "timeout_s": 8}).json()["id"]
        done = wait_for_status(client, timed, {"cancelled", "failed", "succeeded"}, timeout=120)
        assert done["status"] == "failed" and done["error"].startswith("timed out")


@pytest.fixture
def ray_service_with_store(
    tmp_path: Path, data_dir: Path, database_url: str, cluster: RayCluster, s3: S3Server
) -> Iterator[Service]:
    """The artifacts in the S3 server, its credentials in a file the Ray jobs are told of (the keys stay here)."""
    stored = s3.env_with_file(tmp_path, f"ray-{uuid.uuid4().hex[:12]}")
    with running_service(tmp_path, data_dir, database_url, {**cluster.env, **stored}) as service:
        start_dispatcher(service, cluster)
        yield service


def test_a_killed_training_process_is_requeued_and_resumes_from_its_checkpoint(
    ray_service_with_store: Service, database_url: str, s3: S3Server
) -> None:
    """With ARTIFACT_STORE: the Ray jobs write their checkpoints to the S3 server and resume from them."""
    ray_service = ray_service_with_store
    prefix = ray_service.env["ARTIFACT_STORE"].split("/", 3)[3] + "/"
    with ray_service.client() as client:
        # torch's pace: still running when the test sees step 900 (a NumPy MLP of this size can end first)
        spec = {**LONG, "model": "torch_mlp", "max_steps": 3000, "eval_every": 500}
        job_id = client.post("/jobs", json=spec).json()["id"]
        # past its checkpoints at 200..800
        wait_until(lambda: client.get(f"/jobs/{job_id}").json()["progress"]["step"] >= 900, 120, "step 900")
        found = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _is_entrypoint(p, job_id)]
        assert len(found) == 1, (found, client.get(f"/jobs/{job_id}").json(), _commands("run_attempt"))
        (pid,) = found
        os.kill(pid, signal.SIGKILL)
        done = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=240)
        assert done["status"] == "succeeded" and done["attempts"] == 2, done
        wait_for_logs(client, job_id, "resumes from its checkpoint", attempt=2)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        stored = session.execute(select(Artifact.kind, Artifact.object_key, Artifact.data.is_(None))).all()
        assert [(kind, key in s3.keys(prefix), no_bytes) for kind, key, no_bytes in stored] == [("model", True, True)]
        rows = session.execute(
            select(MetricPoint.split, func.count(), func.count(func.distinct(MetricPoint.step)))
            .where(MetricPoint.job_id == job_id)
            .group_by(MetricPoint.split)
        ).all()
    engine.dispose()
    assert {split: (n, distinct) for split, n, distinct in rows} == {"train": (60, 60), "test": (6, 6)}


def _commands(text: str) -> list[str]:
    commands = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in command:
            commands.append(command)
    return commands


def _is_entrypoint(proc: Path, job_id: int) -> bool:
    try:
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return f"-m workers.run_attempt {job_id} 1" in command and not command.startswith(
        "/bin/sh"
    )  # python, not its shell


def test_a_restarted_dispatcher_submits_nothing_twice(ray_service: Service, cluster: RayCluster) -> None:
    with ray_service.client() as client:
        ids = [client.post("/jobs", json={**TINY, "max_steps": 400}).json()["id"] for _ in range(4)]
        wait_for_status(client, ids[0], {"running"}, timeout=120)
        dispatcher = ray_service.processes[-1]  # the fixture's dispatcher, started after the API
        assert "workers.ray_dispatcher" in str(dispatcher.args)
        os.killpg(dispatcher.pid, signal.SIGKILL)
        dispatcher.wait()
        start_dispatcher(ray_service, cluster, "dispatcher-2")
        jobs = []
        for job_id in ids:
            done = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=240)
            assert done["status"] == "succeeded" and done["attempts"] == 1, done
            jobs.append(done)
    submitted = cluster.submissions()
    for job in jobs:
        ours = sid_of(job).removesuffix("-1")
        assert [sid for sid in submitted if sid.startswith(ours)] == [sid_of(job)]  # one submission, once


def test_serve_with_executor_ray_starts_the_dispatcher(
    tmp_path: Path, data_dir: Path, database_url: str, cluster: RayCluster
) -> None:
    from tests.conftest import start_serve

    env = {**cluster.env, "EXECUTOR": "ray", "DISPATCH_SECONDS": "0.3"}  # RAY_PYTHON: its default
    serve, url = start_serve(tmp_path, data_dir, database_url, env)
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            job_id = client.post("/jobs", json=TINY).json()["id"]
            assert wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=180)["status"] == "succeeded"
            job = client.get(f"/jobs/{job_id}").json()
        assert sid_of(job) in cluster.submissions()
        started = (tmp_path / "serve.log").read_text()
        assert "dispatcher pid" in started and "refuses requests without its token" in started
        assert "401 Unauthorized" not in started  # the token check's expected answer, not an alarm
    finally:
        stop_process(serve)


def test_the_compose_files_dispatcher_runs_against_the_cluster(
    tmp_path: Path, data_dir: Path, database_url: str, cluster: RayCluster
) -> None:
    import shutil

    import yaml

    if shutil.which("docker-compose") is None:
        pytest.skip("`make compose` installs docker-compose")
    shown = subprocess.run(["docker-compose", "config"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                           check=True)  # fmt: skip
    service = yaml.safe_load(shown.stdout)["services"]["ray-dispatcher"]
    given = {k: str(v) for k, v in service["environment"].items()}
    assert given["RAY_AUTH_MODE"] == "token" and given["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
    # the containers' secrets and names, outside containers: files of the test's, the test cluster, database
    # and data (the cluster's nodes read the same files: one machine)
    given = with_secret_files(given, tmp_path / "secrets", {"database_url": database_url,
                                                             "ray_auth_token": cluster.token})  # fmt: skip
    given.update(RAY_ADDRESS=cluster.address, DATA_DIR=str(data_dir))
    command = [sys.executable if part == "python" else part for part in service["command"]]
    with running_service(tmp_path, data_dir, database_url, cluster.env) as api:
        env = {**api.env, **given, "DISPATCH_SECONDS": "0.3"}
        for name in ("RAY_AUTH_TOKEN", "DATABASE_URL"):  # from their files only, as in the container: the
            env.pop(name, None)  # dispatcher, and the Ray jobs it submits, read DATABASE_URL_FILE
        with (api.log_dir / "compose-dispatcher.log").open("ab") as log:
            api.processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                  start_new_session=True))  # fmt: skip
        with api.client() as client:
            job_id = client.post("/jobs", json=TINY).json()["id"]
            assert wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=180)["status"] == "succeeded"


def test_fair_share_holds_for_the_ray_executor(
    tmp_path: Path, data_dir: Path, database_url: str, cluster: RayCluster
) -> None:
    """User A queues 50 jobs, then user B 5; the dispatcher (three one-CPU jobs at a time on this cluster) starts
    each of B's before A's tenth, as the local workers do (tests/service/test_fair_share_workers.py)."""
    job = {"model": "numpy_mlp", "hidden_units": [8], "max_steps": 5, "batch_size": 10, "eval_every": 5}
    quotas = {"API_KEY": "bootstrap", "QUOTA_SUBMISSIONS_PER_MINUTE": "100", "QUOTA_QUEUED_JOBS": "100"}
    with running_service(tmp_path, data_dir, database_url, {**cluster.env, **quotas}) as service:
        with service.client() as client:
            client.headers.update({"Authorization": "Bearer bootstrap"})  # the reads below, as the admin
            heads = {name: {"Authorization": f"Bearer {client.post('/users', json={'name': name}).json()['token']}"}
                     for name in "ab"}  # fmt: skip
            a_jobs = [client.post("/jobs", json=job, headers=heads["a"]).json()["id"] for _ in range(50)]
            b_jobs = [client.post("/jobs", json=job, headers=heads["b"]).json()["id"] for _ in range(5)]
            start_dispatcher(service, cluster)
            started: dict[int, datetime] = {}
            listed: list[dict[str, Any]] = []

            def each_of_bs_started() -> bool:
                listed[:] = client.get("/jobs", params={"limit": 100}).json()["data"]
                started.clear()
                started.update({j["id"]: datetime.fromisoformat(j["started_at"]) for j in listed if j["started_at"]})
                return all(job_id in started for job_id in b_jobs)

            wait_until(each_of_bs_started, 180, lambda: f"each of B's jobs starting: {started}, {service.logs()}",
                       every=0.2)  # fmt: skip
            failed = [j for j in listed if j["status"] == "failed"]
            assert not failed, failed[0]["error"]
            tenth_of_a = started.get(a_jobs[9])
            assert tenth_of_a is None or all(started[job_id] < tenth_of_a for job_id in b_jobs), started
            for job_id in a_jobs:  # leave the cluster free for the next test
                client.post(f"/jobs/{job_id}/cancel")
            for job_id in a_jobs:
                wait_for_status(client, job_id, {"succeeded", "cancelled", "failed"}, timeout=120)


def test_an_urgent_job_takes_a_place_on_a_full_cluster_and_the_preempted_job_resumes(
    tmp_path: Path, data_dir: Path, database_url: str, cluster: RayCluster
) -> None:
    """Issue 42 on the Ray executor: the cluster's 3 CPUs busy with long jobs of priority 0, an urgent one of
    priority 50 gets the place of the most recently started of them, which resumes from its checkpoint (the other
    two keep theirs)."""
    with running_service(tmp_path, data_dir, database_url, {**cluster.env, "PREEMPT_MIN_RUN_SECONDS": "1"}) as service:
        start_dispatcher(service, cluster)
        with service.client() as client:
            long_jobs = [client.post("/jobs", json=LONG).json()["id"] for _ in range(3)]

            def past_a_checkpoint() -> list[dict[str, Any]] | None:
                jobs = [client.get(f"/jobs/{job_id}").json() for job_id in long_jobs]
                return jobs if all(job["progress"]["step"] >= 200 for job in jobs) else None

            running = wait_until(past_a_checkpoint, 120, "three long jobs past step 200")
            latest = max(running, key=lambda job: job["started_at"])["id"]  # the one that gives its place
            others = [job_id for job_id in long_jobs if job_id != latest]
            urgent = client.post("/jobs", json={**TINY, "priority": 50}).json()["id"]
            done = wait_for_status(client, urgent, {"succeeded", "failed"}, timeout=120)
            assert done["status"] == "succeeded", (done["error"], service.logs())
            preempted = client.get(f"/jobs/{latest}").json()
            assert preempted["preemptions"] == 1, preempted
            assert [client.get(f"/jobs/{j}").json()["preemptions"] for j in others] == [0, 0]
            attempts = wait_until(  # claimed again once the urgent one ended, resuming from its checkpoint
                lambda: (
                    len(rows := client.get(f"/jobs/{long_jobs[-1]}/attempts").json()["data"]) == 2
                    and rows[1]["resumed_from_step"] is not None
                    and rows
                ),
                120,
                "the preempted job's second attempt",
            )
            assert attempts[0]["outcome"] == "preempted" and attempts[0]["executor"].startswith("ray:")
            assert attempts[1]["resumed_from_step"] == attempts[0]["steps_done"] > 0
            for job_id in long_jobs:
                client.post(f"/jobs/{job_id}/cancel")
            for job_id in long_jobs:
                assert wait_for_status(client, job_id, {"cancelled"}, timeout=60)["status"] == "cancelled"
