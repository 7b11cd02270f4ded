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
from harness.waiting import wait_for_status, wait_until
from harness.webhook_receiver import Receiver
from tests.conftest import ROOT, stop_process, with_secret_files

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="`make compose` installs it")


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "ALLOWED_HOSTS", "RAY_AUTH_TOKEN")}
    return subprocess.run(["docker-compose", "config"], cwd=ROOT, env={**clean, **env}, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


@pytest.fixture
def config() -> dict[str, Any]:
    done = compose_config()
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
    assert set(services) == {"postgres", "api", "worker", "sweeps", "webhooks", "ray-head", "ray-worker",
                             "ray-dispatcher"}  # fmt: skip
    # issue 46: `make serve`'s command and roles in every service of ours
    roles = {"api": "api", "worker": "worker", "sweeps": "sweeps", "webhooks": "deliverer", "ray-dispatcher": "worker"}
    for name, role in roles.items():
        assert services[name]["command"] == ["python", "-m", "app.serve"], name
        assert services[name]["environment"]["SERVE_ROLES"] == role, name
    assert services["ray-dispatcher"]["environment"]["EXECUTOR"] == "ray"
    for name in ("webhooks", "sweeps"):
        assert "profiles" not in services[name]
        assert services[name]["depends_on"]["api"]["condition"] == "service_healthy"  # migrations first
    assert all(services[name]["profiles"] == ["ray"] for name in ("ray-head", "ray-worker", "ray-dispatcher"))
    assert "profiles" not in services["worker"] and "profiles" not in services["api"]
    assert services["ray-head"]["healthcheck"]["test"][:2] == ["CMD", "ray"]
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    (ray_gpu,) = services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert ray_gpu["capabilities"] == ["gpu"]
    for name in ("ray-head", "ray-worker", "ray-dispatcher"):  # token authentication everywhere
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token"
        assert services[name]["environment"]["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token"
    assert services["ray-dispatcher"]["environment"]["RAY_ADDRESS"] == "http://ray-head:8265"
    assert {services[name]["image"] for name in services if name != "postgres"} == {"cifar-jobs:latest"}
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"  # migrations first
    (device,) = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"] and device["count"] == 1
    assert "database" in config["volumes"]
    assert all(volume.endswith(":/data:rw") for volume in services["worker"]["volumes"])


def test_secrets_come_as_files_and_services_restart_as_an_unprivileged_user(config: dict[str, Any]) -> None:
    """No password, key or token in any service's environment (nor a default one): files mounted as
    secrets; every service restarts unless stopped; the image's user is not root."""
    services = config["services"]
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        for key, value in service["environment"].items():
            secret_like = any(word in key for word in ("PASSWORD", "TOKEN", "KEY")) or key == "DATABASE_URL"
            assert not secret_like or key.endswith(("_FILE", "_PATH")), (name, key, value)
            assert "cifar:cifar@" not in str(value), (name, key)
    assert services["api"]["environment"]["API_KEY_FILE"] == "/run/secrets/api_key"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert {s["source"] if isinstance(s, dict) else s for s in services["api"]["secrets"]} == {
        "database_url",
        "api_key",
    }
    assert all(Path(secret["file"]).parent.name == "secrets" for secret in config["secrets"].values())
    dockerfile = (ROOT / "Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_make_secrets_writes_random_secrets_once(tmp_path: Path) -> None:
    (tmp_path / "Makefile").symlink_to(ROOT / "Makefile")
    subprocess.run(["make", "-s", "secrets"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    secrets = {path.name: path.read_text().strip() for path in (tmp_path / "secrets").iterdir()}
    assert set(secrets) == {"postgres_password", "api_key", "ray_auth_token", "database_url"}
    assert len({secrets["postgres_password"], secrets["api_key"], secrets["ray_auth_token"]}) == 3
    assert secrets["database_url"] == f"postgresql+psycopg://cifar:{secrets['postgres_password']}@postgres:5432/cifar"
    assert (tmp_path / "secrets").stat().st_mode & 0o077 == 0  # the folder is the owner's alone
    subprocess.run(["make", "-s", "secrets"], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    assert (tmp_path / "secrets" / "api_key").read_text().strip() == secrets["api_key"]  # kept, not replaced


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
        # the container's secrets and names, outside containers: files of the test's, the test server, the
        # test's data folder
        given = with_secret_files(given, tmp_path / "secrets", {"database_url": database_url,
                                                                 "api_key": "compose-test-key"})  # fmt: skip
        given.update(DATA_DIR=str(data_dir))
        # the test's receiver listens on loopback, which a webhook may reach only when allowed
        return {**os.environ, **given, "CHECKPOINT_MIN_SECONDS": "0", "WEBHOOK_ALLOW_PRIVATE": "true"}

    api = config["services"]["api"]
    assert (api["environment"]["HOST"], api["environment"]["PORT"]) == ("0.0.0.0", "8000")
    try:  # (on loopback here, a free port)
        processes.append(run_service(api, {**environment("api"), "HOST": "127.0.0.1", "PORT": str(port)},
                                     tmp_path / "api.log"))  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, processes[0])
        processes.append(run_service(config["services"]["worker"], environment("worker"), tmp_path / "worker.log"))
        processes.append(run_service(config["services"]["webhooks"], environment("webhooks"), tmp_path / "hooks.log"))
        processes.append(run_service(config["services"]["sweeps"], environment("sweeps"), tmp_path / "sweeps.log"))
        headers = {"Authorization": "Bearer compose-test-key"}
        with httpx.Client(base_url=url, timeout=10, headers=headers) as client, Receiver("") as receiver:
            hook = client.post("/webhooks", json={"url": receiver.url, "events": ["job.succeeded"]}).json()
            receiver.secret = hook["secret"]
            spec = {"model": "numpy_mlp", "hidden_units": [16], "max_steps": 20, "eval_every": 20,
                    "batch_size": 50, "preprocessing": "standardize"}  # fmt: skip
            # a sweep of one trial: the sweep driver creates its job, the worker trains it, the deliverer tells
            sweep = {"base": spec, "method": "grid", "search": {"learning_rate": {"choices": [0.01]}}}
            sweep_id = client.post("/sweeps", json=sweep).json()["id"]
            trial = wait_until(lambda: client.get(f"/sweeps/{sweep_id}").json()["leaderboard"], 60, "the trial")
            job = trial[0]["job_id"]
            done = wait_for_status(client, job, {"succeeded", "failed"}, timeout=120)
            assert done["status"] == "succeeded", done["error"]
            arrival = wait_until(lambda: next(iter(receiver.first.values()), None), 30, "the webhook delivery")
            assert arrival.message is not None and arrival.message["data"]["job_id"] == job  # signed, delivered
            assert httpx.get(f"{url}/jobs").status_code == 401  # the key the file demands is in force
        for log, role, child in (("worker", "worker", "worker"), ("hooks", "deliverer", "webhook deliverer"),
                                 ("sweeps", "sweeps", "sweep driver")):  # fmt: skip
            started = (tmp_path / f"{log}.log").read_text()
            assert f"no API here (SERVE_ROLES={role}); {child} pid" in started, started[-2000:]
    finally:
        for process in reversed(processes):
            stop_process(process)
