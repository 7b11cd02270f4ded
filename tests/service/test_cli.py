"""`cifar-jobs` run as a person runs it: a real process against a real server and worker."""

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from harness.proxy import cutting_proxy
from harness.waiting import wait_for_status
from tests.conftest import Service, running_service

CLI = [sys.executable, "-m", "cli"]
PING_SECONDS = 0.2
# long enough to outlast many keep-alive pings: the first ping after an event once crashed `--watch`
LONGER_THAN_PINGS = {"model": "numpy_mlp", "hidden_units": [64], "batch_size": 20, "max_steps": 3000,
                     "eval_every": 500, "log_every": 20}  # fmt: skip


def run(
    service: Service, *args: str, stdin: str | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIFAR_JOBS_URL": url or service.url, "COLUMNS": "160"}
    return subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=180)


@pytest.fixture
def pinging_service(tmp_path: Path, data_dir: Path, database_url: str) -> Iterator[Service]:
    """A service whose event streams send a keep-alive ping every PING_SECONDS (15 s by default)."""
    with running_service(tmp_path, data_dir, database_url, {"EVENTS_PING_SECONDS": str(PING_SECONDS)}) as service:
        service.start_worker()
        yield service


def test_watch_follows_a_job_through_keep_alive_pings(pinging_service: Service) -> None:
    watched = run(pinging_service, "submit", json.dumps(LONGER_THAN_PINGS), "--watch")
    assert watched.returncode == 0, watched.stderr
    assert "Traceback" not in watched.stderr and "succeeded" in watched.stdout and "test_accuracy" in watched.stdout
    job_id = watched.stdout.split()[1]
    # not a terminal: a line for each change of status and each test evaluation, as they come
    for line in ("running", "step 500/3000 test accuracy", "step 3000/3000 test accuracy", "succeeded"):
        assert f"job {job_id} {line}" in watched.stdout, watched.stdout
    with pinging_service.client() as client:
        job = client.get(f"/jobs/{job_id}").json()
    # sse-starlette pings every interval, events or not: the stream the CLI read carried several
    assert job["running_seconds"] > 5 * PING_SECONDS


def test_watch_reconnects_where_it_left_off_when_the_stream_is_cut(pinging_service: Service) -> None:
    port = int(pinging_service.url.rsplit(":", 1)[1])
    with cutting_proxy(port, "/events", cut_after=300) as proxy:
        watched = run(pinging_service, "submit", json.dumps(LONGER_THAN_PINGS), "--watch",
                      url=f"http://127.0.0.1:{proxy.port}")  # fmt: skip
    assert proxy.cut == 1
    assert watched.returncode == 0, watched.stderr
    assert "connection lost" in watched.stderr and "reconnecting from step" in watched.stderr
    assert "succeeded" in watched.stdout and "test_accuracy" in watched.stdout


def png_file(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (40, 30), color).save(path)
    return path


def test_submit_watch_status_list_predict_plot(service: Service, tmp_path: Path) -> None:
    spec = '{"model": "numpy_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 60, "eval_every": 30}'
    submitted = run(service, "submit", spec, "--set", "name=from the cli", "--tag", "cli", "--notes", "n", "--watch")
    assert submitted.returncode == 0, submitted.stderr
    assert "succeeded" in submitted.stdout and "test_accuracy" in submitted.stdout
    job_id = submitted.stdout.split()[1]

    status = run(service, "status", job_id)
    assert status.returncode == 0 and f"job {job_id} succeeded" in status.stdout
    listed = run(service, "list", "--status", "succeeded", "--tag", "cli")
    assert listed.returncode == 0 and "from the cli" in listed.stdout and "1 of 1" in listed.stdout

    images = [png_file(tmp_path / "red.png", (250, 10, 10)), png_file(tmp_path / "blue.png", (10, 10, 250))]
    predicted = run(service, "predict", *map(str, images), "--job", job_id, "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr
    assert "red.png:" in predicted.stdout and "blue.png:" in predicted.stdout

    out = tmp_path / "job.png"
    plotted = run(service, "plot", job_id, "-o", str(out), "--width", "500", "--height", "250")
    assert plotted.returncode == 0 and Image.open(io.BytesIO(out.read_bytes())).size == (500, 250)


def test_a_failed_job_exits_non_zero_and_errors_name_the_field(service: Service) -> None:
    failed = run(service, "submit", "--model", "numpy_mlp", "--set", "dataset=nowhere", "--set", "max_steps=5",
                 "--watch")  # fmt: skip
    assert failed.returncode == 1 and "failed" in failed.stdout
    refused = run(service, "submit", "-", stdin='{"model": "torch_mlp", "hidden_units": []}')
    assert refused.returncode == 1 and "422" in refused.stderr and "hidden_units" in refused.stderr
    with service.client() as client:
        queued = client.post("/jobs", json={"model": "numpy_mlp", "max_steps": 10**6, "eval_every": 10**5}).json()
        wait_for_status(client, queued["id"], {"running"})
    cancelled = run(service, "cancel", str(queued["id"]))
    assert cancelled.returncode == 0 and "cancel" in cancelled.stdout
    missing = run(service, "status", "999")
    assert missing.returncode == 1 and "404" in missing.stderr


def test_logs_download_delete_sweeps_and_report_commands(service: Service, tmp_path: Path) -> None:
    service.start_sweep_driver()
    tiny = {"model": "numpy_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 40, "eval_every": 20}
    job_id = run(service, "submit", json.dumps(tiny)).stdout.split()[1]
    followed = run(service, "logs", job_id, "--follow")  # from queued to the end, then it returns
    assert followed.returncode == 0, followed.stderr
    assert "step 40/40: test loss" in followed.stdout and f"job {job_id}: 40 steps done" in followed.stdout
    assert followed.stdout.count("step 40/40: test loss") == 1  # each line once, however often it was read
    tail = run(service, "logs", job_id, "--tail", "1")
    assert tail.returncode == 0 and tail.stdout.count("\n") == 1

    model = tmp_path / "model.safetensors"
    downloaded = run(service, "download", job_id, "-o", str(model))
    assert downloaded.returncode == 0, downloaded.stderr
    with service.client() as client:
        assert hashlib.sha256(model.read_bytes()).hexdigest() == client.get(f"/jobs/{job_id}").json()[
            "trained_model"]["sha256"]  # fmt: skip

    # trials far too long to end before the cancel below (with 20 steps the sweep sometimes finished first)
    long_trials = {**tiny, "max_steps": 10**6, "eval_every": 10**5}
    sweep = {"base": long_trials, "search": {"hidden_units": {"choices": [[8], [16]]}}, "method": "grid"}
    submitted = run(service, "sweeps", "submit", json.dumps(sweep))
    assert submitted.returncode == 0 and submitted.stdout.startswith("sweep 1 running: grid"), submitted.stderr
    listed = run(service, "sweeps", "list")
    assert "sweep 1" in listed.stdout and "1 of 1" in listed.stdout
    shown = run(service, "sweeps", "show", "1")
    assert shown.returncode == 0 and "had every trial run to its end" in shown.stdout, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if "trial" in line and "objective" in line)
    assert header.replace("┃", " ").split()[-1] == "hidden_units"  # a column for each searched field
    assert "[8]" in shown.stdout and "[16]" in shown.stdout
    cancelled = run(service, "sweeps", "cancel", "1")
    assert cancelled.returncode == 0 and "sweep 1 cancelled" in cancelled.stdout

    report = run(service, "report", "submit", "--convnet-steps", "1", "--resnet18-steps", "1")
    assert report.returncode == 0 and "figure 1: job" in report.stdout, report.stderr
    with service.client() as client:
        for job in client.get("/jobs", params={"status": "queued", "limit": 500}).json()["data"]:
            client.post(f"/jobs/{job['id']}/cancel")
    shown_report = run(service, "report", "show", "-o", str(tmp_path / "report.md"))
    assert shown_report.returncode == 0 and "figure" in (tmp_path / "report.md").read_text().lower()

    deleted = run(service, "delete", job_id, "--yes")
    assert deleted.returncode == 0 and f"job {job_id} deleted" in deleted.stdout
    again = run(service, "delete", job_id, "--yes")
    assert again.returncode == 1 and "404" in again.stderr and "not found" in again.stderr
