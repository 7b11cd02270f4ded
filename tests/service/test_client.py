"""The Python client (`cifar_jobs`) against a real server, worker and sweep driver, shared by the module's tests:
each test makes its own jobs and finds them by id or tag, never by counting."""

import base64
import csv
import io
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from cifar_jobs import (
    Client,
    Conflict,
    Forbidden,
    NotFound,
    QuotaExceeded,
    SpecRefused,
    Unauthorized,
    Unavailable,
)
from cifar_jobs.specs import NumpyMLPSpec, TorchMLPSpec
from harness.proxy import cutting_proxy
from harness.readme import as_run_here, readme_blocks
from harness.waiting import wait_until
from tests.conftest import ROOT, Service, running_service
from tests.datagen import write_cifar_batches

ADMIN_KEY = "bootstrap-key"
PING_SECONDS = 0.2
SETTINGS = {
    "API_KEY": ADMIN_KEY,
    "EVENTS_PING_SECONDS": str(PING_SECONDS),  # many keep-alive pings within one short job
    "EVENTS_MAX_STREAMS": "2",  # the third stream is a real 503
    "QUOTA_PLANS_PER_MINUTE": "2",  # the third plan of a member is a real 429
    "SWEEP_INTERVAL_SECONDS": "0.2",
    "SYSTEM_METRICS_SECONDS": "0.5",  # a few samples from a job of a few seconds
}
# long enough to outlast many pings; a few seconds on a laptop
PINGED_JOB = TorchMLPSpec(model="torch_mlp", hidden_units=[16], batch_size=20, max_steps=1500, eval_every=300,
                          log_every=10, seed=3)  # fmt: skip
QUICK_JOB = {"model": "numpy_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 60, "eval_every": 30}
LONG_JOB = {"model": "numpy_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 10**6, "eval_every": 10**5}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, migrated_template: str) -> Iterator[Service]:
    """One server (with an admin key), worker and sweep driver for the module, on SQLite (the client sends HTTP
    only: nothing here depends on the database)."""
    folder = tmp_path_factory.mktemp("client")
    write_cifar_batches(folder / "data" / "cifar10")
    shutil.copyfile(migrated_template, folder / "jobs.db")
    with running_service(folder, folder / "data", f"sqlite:///{folder / 'jobs.db'}", SETTINGS) as running:
        running.start_worker()
        running.start_sweep_driver()
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[Client]:
    with Client(url=service.url, token=ADMIN_KEY) as admin:
        yield admin


def test_a_typed_spec_is_queued_once_followed_through_pings_and_read_as_tables(client: Client, tmp_path: Path) -> None:
    job = client.submit(PINGED_JOB, idempotency_key="typed-spec-1")
    assert client.submit(PINGED_JOB, idempotency_key="typed-spec-1").id == job.id  # a retry queues nothing more
    assert (
        job.spec["hidden_units"] == [16]
        and job.spec["learning_rate"] == TorchMLPSpec.model_fields["learning_rate"].default
    )  # the service's default for a field not given
    with pytest.raises(TimeoutError, match=f"job {job.id} did not end within 0.3 s"):
        job.wait(progress=False, timeout=0.3)
    assert job.wait(timeout=120).status == "succeeded"  # with its progress bar
    assert job.data["running_seconds"] > 5 * PING_SECONDS  # the stream it followed carried several pings

    with httpx.Client(base_url=client.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as raw:
        served = raw.get(f"/jobs/{job.id}/metrics").json()["points"]
        csv_lines = raw.get(f"/jobs/{job.id}/metrics.csv").text.strip().splitlines()
    curve = job.curve()
    assert curve == served and len(curve) == len(csv_lines) - 1 > 150
    assert job.curve(page_points=10) == served  # over many pages, nothing missed or twice
    test_points = job.curve(split="test")
    assert [p["step"] for p in test_points] == [300, 600, 900, 1200, 1500]
    frame = curve.to_pandas()
    assert list(frame.columns) == ["step", "split", "loss", "accuracy"] and len(frame) == len(served)
    assert frame[frame.split == "test"].step.tolist() == [300, 600, 900, 1200, 1500]

    job.patch(name="from python", tags=["client-test", "mlp"], notes="the client's own")
    runs = client.runs(tag="client-test").to_pandas()
    row = runs.set_index("id").loc[job.id]
    assert row["name"] == "from python" and row["status"] == "succeeded" and row["hidden_units"] == [16]
    assert row["test_accuracy"] == job.refresh().final_metrics["test_accuracy"]
    assert row["learning_rate"] == job.spec["learning_rate"] and row["step"] == 1500
    assert [j.id for j in client.jobs(tag="client-test", limit=5)] == runs.id.tolist()[:5]

    assert [attempt["number"] for attempt in job.attempts()] == [1]
    assert f"job {job.id}: 1500 steps done" in job.logs()
    assert len(job.system()) >= 1
    saved = job.download(tmp_path / "model.safetensors")
    assert saved.stat().st_size == job.data["trained_model"]["size_bytes"]
    again = job.reproduce()
    assert again.id != job.id and again.data["reproduces"] == job.id and again.spec["seed"] == job.spec["seed"]
    plan = client.plan(PINGED_JOB)
    assert plan["spec"]["hidden_units"] == [16]


def test_runs_page_through_every_job_a_filter_selects(client: Client) -> None:
    jobs = [client.submit({**QUICK_JOB, "seed": seed}) for seed in range(7)]
    for job in jobs:
        job.patch(tags=["paged"])
    selected = client.runs(tag="paged")
    assert sorted(row["id"] for row in selected) == sorted(job.id for job in jobs)
    import cifar_jobs.client

    page = cifar_jobs.client.RUNS_PAGE
    cifar_jobs.client.RUNS_PAGE = 3  # pages of three: 3 + 3 + 1
    try:
        ids = [row["id"] for row in selected]  # newest first; their statuses change meanwhile: the worker runs them
        assert [row["id"] for row in client.runs(tag="paged")] == ids
        assert [row["id"] for row in client.runs(tag="paged", limit=4)] == ids[:4]
    finally:
        cifar_jobs.client.RUNS_PAGE = page
    assert sorted(client.runs(tag="paged", where="seed>=5").to_pandas().seed) == [5, 6]


def test_wait_goes_on_through_a_cut_stream(service: Service, client: Client, caplog: pytest.LogCaptureFixture) -> None:
    port = int(service.url.rsplit(":", 1)[1])
    with cutting_proxy(port, "/events", cut_after=300) as proxy, Client(f"http://127.0.0.1:{proxy.port}",
                                                                          ADMIN_KEY) as through_proxy:  # fmt: skip
        job = through_proxy.submit(PINGED_JOB.model_copy(update={"seed": 4}))
        with caplog.at_level(logging.WARNING, logger="cifar_jobs"):
            assert job.wait(progress=False, timeout=120).status == "succeeded"
    assert proxy.cut == 1
    assert any("connection lost" in r.message and "reconnecting from step" in r.message for r in caplog.records)


def test_each_refusal_is_an_exception_of_its_own_with_the_services_message(client: Client) -> None:
    with pytest.raises(NotFound) as not_found:
        client.job(999_999)
    assert not_found.value.status == 404 and "999999" in not_found.value.message

    with pytest.raises(SpecRefused) as refused:
        client.submit({"model": "torch_mlp", "learning_rate": -1})
    assert refused.value.field == "learning_rate" and "greater than 0" in refused.value.message
    with pytest.raises(ValueError, match="learning_rate"):  # a typed spec fails before any request
        NumpyMLPSpec(model="numpy_mlp", learning_rate=-1)

    running = client.submit({**LONG_JOB, "seed": 11})
    with pytest.raises(Conflict) as conflict:
        running.delete()
    assert "cancel it first" in conflict.value.message

    with Client(url=client.url, token="cjt_not-a-token") as stranger, pytest.raises(Unauthorized):
        stranger.job(running.id)
    member = client.call("POST", "/users", json={"name": "client-member", "role": "member"})
    with Client(url=client.url, token=member["token"]) as as_member:
        with pytest.raises(Forbidden) as forbidden:
            as_member.call("GET", "/audit")
        assert forbidden.value.status == 403
        as_member.plan(QUICK_JOB)
        as_member.plan(QUICK_JOB)
        with pytest.raises(QuotaExceeded) as quota:
            as_member.plan(QUICK_JOB)
        assert quota.value.retry_after is not None and 0 < quota.value.retry_after <= 60
        assert "plans" in quota.value.message

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=client.url, headers=headers, timeout=30) as raw:
        with raw.stream("GET", f"/jobs/{running.id}/events"), raw.stream("GET", f"/jobs/{running.id}/events"):
            with pytest.raises(Unavailable) as unavailable:
                client.response("GET", f"/jobs/{running.id}/events")
    assert unavailable.value.status == 503 and "2 event streams open" in unavailable.value.message
    assert running.cancel().data["cancel_requested"] or running.status == "cancelled"


def test_a_sweep_from_python_its_leaderboard_and_importances(client: Client) -> None:
    sweep = client.submit_sweep({
        "name": "from python",
        "base": {**QUICK_JOB, "max_steps": 40, "eval_every": 20},
        "search": {"learning_rate": {"choices": [0.001, 0.0001]}},
        "method": "grid",
        "max_concurrent": 1,
        "seed": 1,
    })  # fmt: skip
    assert sweep.wait(timeout=180, interval=0.2).status == "finished"
    board = sweep.leaderboard().to_pandas()
    assert sorted(board.learning_rate.tolist()) == [0.0001, 0.001]
    assert set(board.status) == {"succeeded"}, [client.job(i).data["error"] for i in board.job_id]
    assert board.objective.tolist() == sorted(board.objective.tolist(), reverse=True)  # best first
    assert set(sweep.importances()) <= {"learning_rate"}


def test_the_readmes_python_blocks_run_as_written(service: Service, tmp_path: Path) -> None:
    """In order, in one interpreter (as in a notebook), with the README test's shortening of `max_steps`."""
    script = "\n".join(as_run_here(body, 0) for info, body in readme_blocks() if info == "python")
    assert "client.submit(" in script and "torch_model()" in script
    Image.new("RGB", (64, 48), (200, 40, 40)).save(tmp_path / "cat.png")
    env = {**os.environ, "CIFAR_JOBS_URL": service.url, "API_KEY": ADMIN_KEY, "COLUMNS": "120"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert (
        "succeeded" in done.stdout and "learning_rate -> learning_rate: Input should be greater than 0" in done.stdout
    )
    label_line = next(line for line in done.stdout.splitlines() if line.count(" ") == 1 and "." not in line)
    ours, theirs = label_line.split()
    assert ours == theirs  # the torch module's class is the one /predict gives


def test_jobs_exported_for_tensorboard_read_back_point_for_point(
    service: Service, client: Client, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    job = client.submit(PINGED_JOB.model_copy(update={"seed": 6, "name": "exported"})).wait(progress=False, timeout=120)
    quick = client.submit(QUICK_JOB).wait(progress=False, timeout=120)
    env = {**os.environ, "CIFAR_JOBS_URL": service.url, "API_KEY": ADMIN_KEY}
    command = [sys.executable, "-m", "cli", "export", "tensorboard", str(job.id), str(quick.id), "--to", "runs"]
    exported = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    assert f"runs/job-{job.id}" in exported.stdout and f"runs/job-{quick.id}" in exported.stdout
    assert client.export_tensorboard([job], tmp_path / "again") == [tmp_path / "again" / f"job-{job.id}"]

    events = EventAccumulator(str(tmp_path / "runs" / f"job-{job.id}"), size_guidance={SCALARS: 0})
    events.Reload()
    curve = job.curve()
    for split in ("train", "test"):
        points = [p for p in curve if p["split"] == split]
        for metric in ("loss", "accuracy"):
            read = events.Scalars(f"{split}/{metric}")
            assert [s.step for s in read] == [p["step"] for p in points]
            np.testing.assert_array_equal(
                np.array([s.value for s in read], np.float32), np.array([p[metric] for p in points], np.float32)
            )
    samples = job.system()
    assert len(samples) >= 1 and [s.step for s in events.Scalars("system/cpu")] == [s["step"] for s in samples]
    assert events.Scalars("final/test_accuracy")[0].value == np.float32(job.final_metrics["test_accuracy"])
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["learning_rate"].number_value == job.spec["learning_rate"]
    assert hparams["hidden_units"].string_value == "[16]" and hparams["name"].string_value == "exported"


def test_the_example_notebook_runs_top_to_bottom_in_a_jupyter_kernel(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/notebook.ipynb in a real kernel (nbclient), its training runs shortened as the README's are."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert not cell.outputs, "the notebook is kept without outputs"
        cell.source = as_run_here(cell.source, 0)
    monkeypatch.setenv("CIFAR_JOBS_URL", service.url)  # the kernel's environment is this process's
    monkeypatch.setenv("API_KEY", ADMIN_KEY)
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own paths warning, not ours
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    def result(cell: Any, kind: str = "text/plain") -> str:
        return "".join(str(o["data"][kind]) for o in cell.outputs if o.get("output_type") == "execute_result")

    assert result(code[0]) == repr(service.url)
    assert result(code[2]).count("'succeeded'") == 4
    table = result(code[3], "text/html")
    assert table.count("</tr>") == 5 and "mlp [800, 600, 400]" in table  # a header and a row per shape
    images = [o["data"]["image/png"] for o in code[4].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    plot = np.asarray(Image.open(io.BytesIO(base64.b64decode(images[0]))).convert("L"))
    assert plot.shape[1] > 400 and (plot < 128).mean() > 0.005  # drawn: axes, labels and four curves


def test_a_class_leaderboard_from_the_cli_and_the_client(service: Service, client: Client) -> None:
    student = client.call("POST", "/users", json={"name": "lab-student", "role": "member"})
    with Client(url=client.url, token=student["token"]) as as_student:
        jobs = [as_student.submit({**QUICK_JOB, "learning_rate": rate}) for rate in (0.001, 0.0003)]
        for job in jobs:
            job.wait(progress=False, timeout=120)
    env = {**os.environ, "CIFAR_JOBS_URL": service.url, "API_KEY": ADMIN_KEY, "COLUMNS": "160"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    edited = cli("edit", str(jobs[0].id), "--name", "first try", "--tag", "lab1", "--tag", "mlp", "--notes", "slow")
    assert edited.returncode == 0 and edited.stdout.strip() == f"job {jobs[0].id}: first try [lab1 mlp]", edited
    assert client.job(jobs[0].id).data["notes"] == "slow"
    assert (
        cli("edit", str(jobs[0].id)).stderr.strip() == "nothing to change: give --name, --tag, --clear-tags or --notes"
    )
    listed = cli("list", "--owner", "lab-student", "--sort", "-learning_rate")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if "lab-student" in line]
    assert [int(line.split()[1]) for line in lines] == [jobs[0].id, jobs[1].id]  # the owner column, by rate
    exported = cli("list", "--owner", "lab-student", "--where", "learning_rate<0.001", "--csv")
    assert exported.returncode == 0, exported.stderr
    table = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [int(row["id"]) for row in table] == [jobs[1].id] and table[0]["owner"] == "lab-student"
    assert float(table[0]["test_accuracy"]) == jobs[1].final_metrics["test_accuracy"]
    runs = client.runs(owner="lab-student", tag="lab1")
    assert [row["id"] for row in runs] == [jobs[0].id] and runs[0]["name"] == "first try"


def test_a_backup_taken_while_a_job_trains_restores_into_a_fresh_service(
    service: Service, client: Client, tmp_path: Path
) -> None:
    done = client.submit({**QUICK_JOB, "seed": 21}).wait(progress=False, timeout=120)
    training = client.submit({**LONG_JOB, "seed": 22, "log_every": 10})
    wait_until(lambda: len(training.curve()) >= 20, 60, "the long job's first points")
    env = {**os.environ, "CIFAR_JOBS_URL": service.url, "API_KEY": ADMIN_KEY, "COLUMNS": "300"}
    backed_up = subprocess.run([sys.executable, "-m", "cli", "admin", "backup", str(tmp_path / "copy.db")], env=env,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert backed_up.returncode == 0, backed_up.stderr
    assert "copy.db (" in backed_up.stdout and not (tmp_path / "copy.db.part").exists()
    training.cancel()
    before = {job.id: job.data for job in client.jobs()}
    image = np.full((32, 32, 3), 90, np.uint8)

    folder = tmp_path / "restored"
    with running_service(folder, Path(service.env["DATA_DIR"]), f"sqlite:///{tmp_path / 'copy.db'}",
                         {"API_KEY": ADMIN_KEY, "STALE_AFTER_SECONDS": "2"}) as restored, Client(restored.url,
                                                                                      ADMIN_KEY) as again:  # fmt: skip
        after = {job.id: job.data for job in again.jobs()}
        assert set(after) == {i for i in before if i <= training.id}  # every job up to the backup, none after
        assert again.job(done.id).curve() == done.curve() and again.job(done.id).status == "succeeded"
        assert again.job(done.id).model_bytes() == done.model_bytes()
        assert again.predict(image, job=done.id, top_k=3) == client.predict(image, job=done.id, top_k=3)
        taken = again.job(training.id).curve()
        assert 20 <= len(taken) and taken == training.curve()[: len(taken)]  # its points up to the backup
        assert not any(entry["action"] == "database.backup" for entry in again.call("GET", "/audit")["data"])
        # the job that was training at the backup: its worker is not there; a new one takes it up again
        restored.start_worker("restorer")
        resumed = again.job(training.id)
        wait_until(lambda: resumed.refresh().data["attempts"] >= 2 and resumed.status == "running", 120,
                   lambda: f"job {training.id} started again: {resumed.data}")  # fmt: skip
        resumed.cancel()
    assert any(entry["action"] == "database.backup" for entry in client.call("GET", "/audit")["data"])
