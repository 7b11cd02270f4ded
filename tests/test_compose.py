"""docker-compose.yml: checked with Debian's `docker-compose config`, then each service's command run
outside containers, with the environment the file gives it, against a real PostgreSQL."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.net import free_port, wait_until_up
from harness.postgres import PostgresServer, start_postgres
from tests.conftest import ROOT, stop_process, wait_for_status

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="`make compose` installs it")


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "ALLOWED_HOSTS", "RAY_AUTH_TOKEN")}
    return subprocess.run(["docker-compose", "config"], cwd=ROOT, env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


@pytest.fixture
def config() -> dict[str, Any]:
    done = compose_config(API_KEY="compose-test-key", RAY_AUTH_TOKEN="compose-test-token")
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


@pytest.fixture
def postgres(postgres_server: PostgresServer | None) -> Iterator[PostgresServer]:
    """The session's test server on the PostgreSQL pass; one of this test's own on the SQLite pass."""
    if postgres_server is not None:
        yield postgres_server
        return
    server = start_postgres(free_port())
    try:
        yield server
    finally:
        server.stop()


def test_the_file_has_healthchecks_a_gpu_reservation_and_one_image(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {"postgres", "api", "worker", "ray-head", "ray-worker", "ray-dispatcher"}
    assert all(services[name]["profiles"] == ["ray"] for name in ("ray-head", "ray-worker", "ray-dispatcher"))
    assert "profiles" not in services["worker"] and "profiles" not in services["api"]
    assert services["ray-head"]["healthcheck"]["test"][:2] == ["CMD", "ray"]
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    (ray_gpu,) = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert ray_gpu["capabilities"] == ["gpu"]
    for name in ("ray-head", "ray-worker", "ray-dispatcher"):  # token authentication everywhere
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token"
        assert services[name]["environment"]["RAY_AUTH_TOKEN"] == "compose-test-token"
    assert services["ray-dispatcher"]["environment"]["RAY_ADDRESS"] == "http://ray-head:8265"
    assert {services[name]["image"] for name in services if name != "postgres"} == {"cifar-jobs:latest"}
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"  # migrations first
    (device,) = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == 1
    assert "database" in config["volumes"]
    assert all(volume.endswith(":/data:rw") for volume in services["worker"]["volumes"])


def test_the_api_refuses_to_start_without_a_key() -> None:
    done = compose_config()
    assert done.returncode != 0 and "set API_KEY" in done.stderr


def run_service(service: dict[str, Any], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable if part == "python" else part for part in service["command"]]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def test_each_service_command_runs_with_the_files_environment(
    config: dict[str, Any], postgres: PostgresServer, data_dir: Path, tmp_path: Path
) -> None:
    database_url = postgres.new_database_url()
    port = free_port()
    processes = []

    def environment(name: str) -> dict[str, str]:
        given: dict[str, str] = {k: str(v) for k, v in config["services"][name]["environment"].items()}
        assert given["DATABASE_URL"].startswith("postgresql+psycopg://cifar:cifar@postgres:5432/")
        # the container's names, outside containers: the test server, the test's data folder
        given.update(DATABASE_URL=database_url, DATA_DIR=str(data_dir))
        return {**os.environ, **given, "CHECKPOINT_MIN_SECONDS": "0"}

    api = dict(config["services"]["api"])
    command = list(api["command"])
    assert command[command.index("--host") + 1] == "0.0.0.0" and command[command.index("--port") + 1] == "8000"
    command[command.index("--host") + 1], command[command.index("--port") + 1] = "127.0.0.1", str(port)
    api["command"] = command
    try:
        processes.append(run_service(api, environment("api"), tmp_path / "api.log"))
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, processes[0])
        processes.append(run_service(config["services"]["worker"], environment("worker"), tmp_path / "worker.log"))
        headers = {"Authorization": "Bearer compose-test-key"}
        with httpx.Client(base_url=url, timeout=10, headers=headers) as client:
            spec = {"model": "torch_mlp", "hidden_units": [16], "max_steps": 20, "eval_every": 20,
                    "batch_size": 50, "preprocessing": "standardize"}  # fmt: skip
            job = client.post("/jobs", json=spec).json()["id"]
            done = wait_for_status(client, job, {"succeeded", "failed"}, timeout=120)
            assert done["status"] == "succeeded", done["error"]
            assert httpx.get(f"{url}/jobs").status_code == 401  # the key the file demands is in force
    finally:
        for process in reversed(processes):
            stop_process(process)
