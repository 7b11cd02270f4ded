"""End to end: a real API server and real worker processes over a real SQLite file."""

from pathlib import Path

import pytest

from harness.waiting import wait_for_status, wait_until
from tests.conftest import Service


@pytest.mark.postgresql
def test_submitted_job_trains_to_success_and_logs_its_curve(service: Service) -> None:
    with service.client() as client:
        spec = {
            "model": "torch_mlp",
            "hidden_units": [32],
            "optimizer": "adam",
            "learning_rate": 0.01,
            "batch_size": 50,
            "max_steps": 95,
            "eval_every": 20,
            "log_every": 10,
            "preprocessing": "standardize",
        }
        created = client.post("/jobs", json=spec)
        assert created.status_code == 201, created.text
        job = created.json()
        assert created.headers["location"] == f"/jobs/{job['id']}"
        assert job["status"] == "queued"
        assert job["spec"]["seed"] == 42 and job["spec"]["device"] == "auto"  # defaults filled in

        done = wait_for_status(client, job["id"], {"succeeded", "failed"}, timeout=90)
        assert done["status"] == "succeeded", done["error"] or service.logs()
        assert done["progress"]["step"] == 95 and done["progress"]["fraction"] == 1.0
        assert done["final_metrics"]["test_accuracy"] >= 0.9  # the tiny classes are easy to tell apart
        assert done["final_metrics"]["steps_per_second"] > 0
        assert done["started_at"] and done["finished_at"] and done["running_seconds"] > 0

        metrics = client.get(f"/jobs/{job['id']}/metrics")
        assert metrics.status_code == 200
        points = metrics.json()["points"]
        train_steps = [p["step"] for p in points if p["split"] == "train"]
        test_steps = [p["step"] for p in points if p["split"] == "test"]
        assert train_steps == [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]
        assert test_steps == [20, 40, 60, 80, 95]
        assert [p["step"] for p in points] == sorted(p["step"] for p in points)
        assert points[-1]["accuracy"] == done["final_metrics"]["test_accuracy"]

        later = client.get(f"/jobs/{job['id']}/metrics", params={"since": 80}).json()["points"]
        assert [(p["step"], p["split"]) for p in later] == [(90, "train"), (95, "train"), (95, "test")]

        listed = client.get("/jobs", params={"status": "succeeded", "model": "torch_mlp"}).json()
        assert listed["count"] == 1 and listed["data"][0]["id"] == job["id"]


def test_numpy_mlp_job_trains_through_the_api(service: Service) -> None:
    with service.client() as client:
        spec = {
            "model": "numpy_mlp",
            "hidden_units": [32],
            "learning_rate": 0.05,
            "batch_size": 50,
            "max_steps": 60,
            "eval_every": 30,
            "log_every": 10,
            "preprocessing": "standardize",
        }
        job = client.post("/jobs", json=spec).json()
        done = wait_for_status(client, job["id"], {"succeeded", "failed"})
        assert done["status"] == "succeeded", done["error"]
        assert done["final_metrics"]["test_accuracy"] >= 0.9
        points = client.get(f"/jobs/{job['id']}/metrics").json()["points"]
        assert [p["step"] for p in points if p["split"] == "test"] == [30, 60]
        assert len([p for p in points if p["split"] == "train"]) == 6
        worker = service.processes[-1].pid
        # the NumPy MLP trains without torch: the worker has not loaded it (2-3 s of CPU at its first torch job)
        assert "libtorch" not in Path(f"/proc/{worker}/maps").read_text()
        torch_job = client.post("/jobs", json={**spec, "model": "torch_mlp", "max_steps": 10}).json()
        assert wait_for_status(client, torch_job["id"], {"succeeded", "failed"})["status"] == "succeeded"
        assert "libtorch" in Path(f"/proc/{worker}/maps").read_text()  # loaded once, before its child was forked


def test_cancel_running_job_keeps_logged_points(service: Service) -> None:
    with service.client() as client:
        job = client.post(
            "/jobs",
            json={
                "model": "torch_mlp",
                "max_steps": 1_000_000,
                "batch_size": 20,
                "log_every": 10,
                "eval_every": 100000,
            },
        ).json()
        wait_for_status(client, job["id"], {"running"})
        wait_until(lambda: client.get(f"/jobs/{job['id']}/metrics").json()["points"], 30, "the job's first points")
        asked = client.post(f"/jobs/{job['id']}/cancel")
        assert asked.status_code == 200
        assert asked.json()["cancel_requested"] is True
        done = wait_for_status(client, job["id"], {"cancelled", "failed", "succeeded"}, timeout=10)
        assert done["status"] == "cancelled", done  # within the deadline: the loop reads the flag every flush
        points = client.get(f"/jobs/{job['id']}/metrics").json()["points"]
        assert points and all(p["step"] <= done["progress"]["step"] for p in points)

        again = client.post(f"/jobs/{job['id']}/cancel")
        assert again.status_code == 409
        assert "has already ended (cancelled)" in again.json()["message"]


def test_cancel_queued_job_is_immediate(service_without_worker: Service) -> None:
    with service_without_worker.client() as client:
        job = client.post("/jobs", json={"model": "torch_mlp"}).json()
        cancelled = client.post(f"/jobs/{job['id']}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["finished_at"] is not None


def test_missing_dataset_and_unavailable_device_fail_with_readable_errors(service: Service) -> None:
    with service.client() as client:
        missing = client.post("/jobs", json={"model": "torch_mlp", "dataset": "nowhere", "max_steps": 5}).json()
        done = wait_for_status(client, missing["id"], {"succeeded", "failed"})
        assert done["status"] == "failed"
        assert "dataset 'nowhere' not found" in done["error"]
        assert "DATA_DIR/nowhere" in done["error"] and service.env["DATA_DIR"] not in done["error"]  # no server paths

        import torch

        if not torch.cuda.is_available():
            cuda = client.post("/jobs", json={"model": "torch_mlp", "device": "cuda", "max_steps": 5}).json()
            done = wait_for_status(client, cuda["id"], {"succeeded", "failed"})
            assert done["status"] == "failed"
            assert "CUDA" in done["error"]
