"""`cifar-jobs` run as a person runs it: a real process against a real server and worker."""

import io
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.conftest import Service, wait_for_status

CLI = [sys.executable, "-m", "cli"]


def run(service: Service, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIFAR_JOBS_URL": service.url, "COLUMNS": "160"}
    return subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=180)


def png_file(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (40, 30), color).save(path)
    return path


def test_submit_watch_status_list_predict_plot(service: Service, tmp_path: Path) -> None:
    spec = '{"model": "torch_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 60, "eval_every": 30}'
    submitted = run(service, "submit", spec, "--set", "name=from the cli", "--watch")
    assert submitted.returncode == 0, submitted.stderr
    assert "succeeded" in submitted.stdout and "test_accuracy" in submitted.stdout
    job_id = submitted.stdout.split()[1]

    status = run(service, "status", job_id)
    assert status.returncode == 0 and f"job {job_id} succeeded" in status.stdout
    listed = run(service, "list", "--status", "succeeded")
    assert listed.returncode == 0 and "from the cli" in listed.stdout

    images = [png_file(tmp_path / "red.png", (250, 10, 10)), png_file(tmp_path / "blue.png", (10, 10, 250))]
    predicted = run(service, "predict", *map(str, images), "--job", job_id, "--top-k", "2")
    assert predicted.returncode == 0, predicted.stderr
    assert "red.png:" in predicted.stdout and "blue.png:" in predicted.stdout

    out = tmp_path / "job.png"
    plotted = run(service, "plot", job_id, "-o", str(out), "--width", "500", "--height", "250")
    assert plotted.returncode == 0 and Image.open(io.BytesIO(out.read_bytes())).size == (500, 250)


def test_a_failed_job_exits_non_zero_and_errors_name_the_field(service: Service) -> None:
    failed = run(service, "submit", "--model", "torch_mlp", "--set", "dataset=nowhere", "--set", "max_steps=5",
                 "--watch")  # fmt: skip
    assert failed.returncode == 1 and "failed" in failed.stdout
    refused = run(service, "submit", "-", stdin='{"model": "torch_mlp", "hidden_units": []}')
    assert refused.returncode == 1 and "422" in refused.stderr and "hidden_units" in refused.stderr
    with service.client() as client:
        queued = client.post("/jobs", json={"model": "torch_mlp", "max_steps": 10**6, "eval_every": 10**5}).json()
        wait_for_status(client, queued["id"], {"running"})
    cancelled = run(service, "cancel", str(queued["id"]))
    assert cancelled.returncode == 0 and "cancel" in cancelled.stdout
    missing = run(service, "status", "999")
    assert missing.returncode == 1 and "404" in missing.stderr
