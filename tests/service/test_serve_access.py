"""`make serve` without a key, as a person starts it: a real process, listening on loopback only; with SERVE_ROLES,
only what it names."""

import os
import subprocess
import sys
from pathlib import Path

import httpx

from harness.net import free_port, wait_until_up
from tests.conftest import ROOT, children_of, stop_process


def test_serve_without_a_key_listens_on_loopback_only_and_says_so(tmp_path: Path, database_url: str) -> None:
    """Also: SERVE_ROLES=api (an API machine's) starts the API alone: no worker, no sweep driver, no deliverer."""
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "HOST": "0.0.0.0",
           "PORT": str(port), "PYTHONUNBUFFERED": "1", "SERVE_ROLES": "api", "API_WORKERS": "1"}  # fmt: skip
    env.pop("API_KEY", None)
    log_path = tmp_path / "serve.log"
    with log_path.open("ab") as log:
        serve = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        wait_until_up(f"http://127.0.0.1:{port}", serve)
        listening = {conn.split()[1] for conn in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if conn.split()[3] == "0A"}  # fmt: skip
        assert f"0100007F:{port:04X}" in listening  # 127.0.0.1
        assert f"00000000:{port:04X}" not in listening  # not 0.0.0.0
        assert "API_KEY is not set: listening on 127.0.0.1 only" in log_path.read_text()
        (api,) = children_of(serve.pid)  # uvicorn, nothing beside it
        assert b"uvicorn" in Path(f"/proc/{api}/cmdline").read_bytes()
        url = f"http://127.0.0.1:{port}"
        job = httpx.post(f"{url}/jobs", json={"model": "numpy_mlp", "max_steps": 5}).json()
        assert job["status"] == "queued" and job["waiting_reason"].startswith("no worker is running")
    finally:
        stop_process(serve)


def test_serve_refuses_a_role_it_does_not_know(tmp_path: Path, database_url: str) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "SERVE_ROLES": "api,gpu"}
    refused = subprocess.run([sys.executable, "-m", "app.serve"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().endswith("SERVE_ROLES: gpu: choose from api, worker, sweeps, deliverer")
    assert "Traceback" not in refused.stderr
