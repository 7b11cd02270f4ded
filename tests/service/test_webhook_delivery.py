"""Webhooks end to end: the API, a worker and the delivery process as real processes, a receiver on loopback that
checks every signature with its own verifier, and a delivery process killed with SIGKILL in the middle of one."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.waiting import wait_for_status, wait_until
from harness.webhook_receiver import Receiver
from tests.conftest import Service, running_service

TINY_JOB = {"model": "numpy_mlp", "hidden_units": [16], "max_steps": 20, "eval_every": 20, "batch_size": 50,
            "preprocessing": "standardize"}  # fmt: skip
LEASE_SECONDS = 2.0  # a killed deliverer's delivery is taken over after this
WEBHOOK_ENV = {"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_RETRY_BASE_SECONDS": "0.2", "WEBHOOK_POLL_SECONDS": "0.1",
               "WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS), "WEBHOOK_TIMEOUT_SECONDS": "10"}  # fmt: skip


@pytest.fixture
def hooked_service(tmp_path: Path, data_dir: Path, database_url: str) -> Iterator[Service]:
    with running_service(tmp_path, data_dir, database_url, WEBHOOK_ENV) as service:
        service.start_worker()
        yield service


def cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIFAR_JOBS_URL": service.url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "cli", *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_jobs_end_is_delivered_signed_and_the_cli_shows_it(hooked_service: Service) -> None:
    with Receiver("whsec_placeholder") as receiver:
        added = cli(hooked_service, "webhooks", "add", receiver.url, "--events", "job.succeeded,job.failed")
        assert added.returncode == 0, added.stderr
        webhook_id = added.stdout.split()[1].rstrip(":")
        receiver.secret = added.stdout.split("secret ")[1].split()[0]  # shown once, by the CLI
        hooked_service.start_process("deliverer", "workers.deliverer")
        with hooked_service.client() as client:
            job_id = client.post("/jobs", json=TINY_JOB).json()["id"]
            ended = wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=120)
            assert ended["status"] == "succeeded", ended["error"]
            arrival = wait_until(lambda: next(iter(receiver.first.values()), None), 30, "the delivery")
            assert arrival.message is not None and arrival.error is None  # the signature verified
            assert arrival.message["type"] == "job.succeeded"
            assert arrival.message["data"]["job_id"] == job_id
            assert arrival.message["data"]["final_metrics"] == ended["final_metrics"]
            assert all(a.message is not None for a in receiver.arrivals)  # no unsigned or badly signed arrival
        assert cli(hooked_service, "webhooks", "test", webhook_id).returncode == 0
        wait_until(lambda: any(a.message and a.message["type"] == "webhook.test" for a in receiver.first.values()),
                   30, "the test delivery")  # fmt: skip
        shown = cli(hooked_service, "webhooks", "deliveries", webhook_id)
        assert shown.returncode == 0, shown.stderr
        assert "job.succeeded" in shown.stdout and "webhook.test" in shown.stdout and "delivered" in shown.stdout
        listed = cli(hooked_service, "webhooks", "list")
        assert f"webhook {webhook_id}: {receiver.url}" in listed.stdout and receiver.secret not in listed.stdout
    logs = hooked_service.logs()
    assert receiver.secret not in logs and "webhook-signature" not in logs


@pytest.mark.postgresql
def test_a_delivery_survives_a_sigkill_of_the_deliverer_mid_retry(hooked_service: Service) -> None:
    def policy(_msg_id: str, n: int) -> tuple[int, float]:
        # the first try fails; the retry hangs until its sender is killed (and is processed); the next is a copy
        return (500, 0.0) if n == 1 else (200, 4.0) if n == 2 else (200, 0.0)

    with Receiver("", policy) as receiver, hooked_service.client() as client:
        made = client.post("/webhooks", json={"url": receiver.url, "events": ["job.succeeded"]}).json()
        receiver.secret = made["secret"]
        job_id = client.post("/jobs", json=TINY_JOB).json()["id"]
        assert wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=120)["status"] == "succeeded"
        deliverer = hooked_service.start_process("deliverer-1", "workers.deliverer")
        wait_until(lambda: len(receiver.started) >= 2, 30, "the retry to arrive")
        os.kill(deliverer.pid, signal.SIGKILL)  # mid-retry: its request is open, its outcome never recorded
        deliverer.wait()
        pending = client.get(f"/webhooks/{made['id']}/deliveries").json()["deliveries"][0]
        assert pending["status"] == "pending" and pending["attempts"] == 2
        assert [a["status_code"] for a in pending["attempt_log"]] == [500]
        hooked_service.start_process("deliverer-2", "workers.deliverer")
        delivered = wait_until(
            lambda: (d := client.get(f"/webhooks/{made['id']}/deliveries").json()["deliveries"][0])["status"]
            == "delivered" and d, LEASE_SECONDS + 30, "the delivery after the restart")  # fmt: skip
        assert delivered["attempts"] == 3 and [a["status_code"] for a in delivered["attempt_log"]] == [500, 200]
        ids = [msg_id for msg_id, _ in receiver.started]
        assert len(set(ids)) == 1 and len(ids) == 3  # three tries of one message, all under one webhook-id
        (first,) = receiver.first.values()  # the receiver's dedup log holds it once
        assert first.message is not None and first.message["type"] == "job.succeeded"
        assert first.message["data"]["job_id"] == job_id
