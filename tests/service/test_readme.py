"""The README's shell blocks run as written, in order, against a live `make serve`, so the README cannot
drift from the code again.

What the test changes, and why:
- The service listens on a free port, not 8000 (the commands' `:8000` becomes that port, and
  CIFAR_JOBS_URL points the CLI at it); `make serve` runs with `-o .venv/.installed` (the install is
  already done) in a folder that holds the checkout's Makefile, pyproject.toml and .venv beside the
  files the commands use: a tiny `cifar10-jpeg.tar.gz` (made here) and the images `cat.png` and
  `ship.jpg`.
- Training runs are shortened: every `max_steps` (and a sweep's `min_steps`) is divided by 100, since
  the tiny data set needs no 5,000 steps. The report's runs are cancelled after their block, as is
  every job still queued (the README submits the report's ten runs and leaves them to train).
- curl runs with `--fail-with-body` (a `.curlrc`), so an answer of 400 or more fails the command, as
  the 422 of a missing content-type header once did.
Blocks marked `text` are shown, not run (a worker pool, containers, a Ray cluster: each has its own
test); `python` blocks run in tests/service/test_client.py; every other block is `sh`.
"""

import os
import sqlite3
import subprocess
import tarfile
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from PIL import Image

from harness.net import free_port, wait_until_up
from harness.readme import as_run_here, readme_blocks
from models.training.precision import CPU_BF16_ENV
from tests.conftest import ROOT, running_service, stop_process
from tests.datagen import CLASSES, write_image_folder


def test_every_block_is_run_or_marked_as_shown_only() -> None:
    blocks = readme_blocks()
    assert blocks[0] == ("sh", "make serve\nmake test\n"), "the README starts with the two commands"
    # `python` blocks ("From Python") run in tests/service/test_client.py
    assert {info for info, _ in blocks} <= {"sh", "python", "text"}, "a block that is neither run nor marked text"


def _tiny_cifar_archive(folder: Path) -> Path:
    images = write_image_folder(folder / "images", CLASSES, n_train_per_class=30, n_test_per_class=10, fmt="JPEG")
    archive = folder / "cifar10-jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(images / split, arcname=split)
    return archive


def _cancel_unfinished(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        for status in ("queued", "running"):
            for job in client.get("/jobs", params={"status": status, "limit": 500}).json()["data"]:
                client.post(f"/jobs/{job['id']}/cancel")


def test_the_readme_commands_run_as_written(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs the checkout's .venv (make test creates it)")
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("Makefile", "pyproject.toml", ".venv"):
        (work / name).symlink_to(ROOT / name)
    _tiny_cifar_archive(work)
    Image.new("RGB", (64, 48), (200, 40, 40)).save(work / "cat.png")
    Image.new("RGB", (48, 64), (30, 60, 200)).save(work / "ship.jpg")
    (tmp_path / "curl").mkdir()
    (tmp_path / "curl" / ".curlrc").write_text("fail-with-body\nsilent\nshow-error\nmax-time = 300\n")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "CIFAR_JOBS_URL": f"http://127.0.0.1:{port}", "API_WORKERS": "1",
           "DOWNLOAD_DATASETS": "false", "CURL_HOME": str(tmp_path / "curl"), "COLUMNS": "120",
           CPU_BF16_ENV: os.environ.get(CPU_BF16_ENV, "0"), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    for name in ("DATA_DIR", "DATABASE_URL", "API_KEY", "EXECUTOR"):
        env.pop(name, None)

    blocks = [body for info, body in readme_blocks() if info == "sh"]
    with (tmp_path / "serve.log").open("ab") as log:
        serve = subprocess.Popen(["make", "-o", ".venv/.installed", "serve"], cwd=work, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}", serve, timeout=60)
        for number, block in enumerate(blocks[1:], start=2):
            script = as_run_here(block, port)
            done = subprocess.run(["bash", "-euo", "pipefail", "-x", "-c", script], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            assert done.returncode == 0, (
                f"README block {number} failed:\n{done.stderr[-4000:]}\n{done.stdout[-2000:]}\n"
                f"serve.log:\n{(tmp_path / 'serve.log').read_text(errors='replace')[-3000:]}"
            )
            if "/reports/assignment" in block:
                _cancel_unfinished(f"http://127.0.0.1:{port}")
    finally:
        stop_process(serve)
    assert (work / "data" / "jobs.db").exists() and (work / "job-1.safetensors").stat().st_size > 0
    (backup,) = work.glob("cifar-*.db")  # "Backups and upgrades": a SQLite file whose jobs are the service's
    with closing(sqlite3.connect(backup)) as copy:
        assert copy.execute("pragma integrity_check").fetchone() == ("ok",)
        assert copy.execute("select count(*) from jobs").fetchone()[0] > 0


def test_the_readme_commands_for_several_people_run_as_written(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """The "Several people on one service" block: each line after the first (which starts the service: here, a
    service with a key), with the key for `API_KEY=...`, the service for `gpu-box:8000`, the teacher's token as
    `$TOKEN` and typed at `login`'s prompt."""
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs the checkout's .venv (make test creates it)")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (block,) = [body for info, body in readme_blocks() if info == "text" and body.startswith("API_KEY=$(openssl")]
    lines = block.replace("\\\n", " ").splitlines()
    assert lines[0].endswith("make serve")
    key = "readme-key"
    with running_service(tmp_path, data_dir, database_url, {"API_KEY": key}) as service:
        env = {name: value for name, value in os.environ.items() if name != "API_KEY"}
        env |= {"CIFAR_JOBS_URL": service.url, "CIFAR_JOBS_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200"}
        outputs, token = [], ""
        for line in lines[1:]:
            command = line.replace("API_KEY=...", f"API_KEY={key}").replace("http://gpu-box:8000", service.url)
            command = command.replace("gpu-box:8000", service.url)
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path,
                                  env={**env, "TOKEN": token}, input=token + "\n", capture_output=True, text=True,
                                  timeout=120)  # fmt: skip
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
            if "add-user teacher" in line:
                token = done.stdout.split("token ", 1)[1].split()[0]
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {key}"}) as client:
            users = {user["id"]: user for user in client.get("/users").json()["data"]}
    assert users[1]["name"] == "teacher" and users[2]["name"] == "alice (removed #2)" and users[2]["removed"]
    assert (tmp_path / "class.csv").read_text().startswith("id,")
    assert any("signed in as teacher (admin)" in output for output in outputs)
