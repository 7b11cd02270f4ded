"""Every job's reproducibility record, and reproductions checked against their originals, on real processes."""

import os
import subprocess
import sys
from typing import Any

import httpx

from harness.waiting import wait_for_status
from models.training.precision import CPU_BF16_ENV
from tests.conftest import Service, stop_process

NUMPY = {"model": "numpy_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 60, "log_every": 5,
         "eval_every": 30}  # fmt: skip
TORCH = {"model": "torch_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 60, "log_every": 5,
         "eval_every": 30, "optimizer": "adam", "seed": 7}  # fmt: skip
CONVNET = {"model": "convnet", "batch_size": 10, "max_steps": 6, "log_every": 2, "eval_every": 6}
ENDED = {"succeeded", "failed", "cancelled", "stopped_early"}


def _verdict(client: httpx.Client, job_id: int) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(f"/jobs/{job_id}/reproduction").json()
    return answer


def test_numpy_and_torch_runs_reproduce_bit_for_bit_with_their_records(service: Service) -> None:
    with service.client() as client:
        for spec in (NUMPY, TORCH):
            original = wait_for_status(client, client.post("/jobs", json=spec).json()["id"], ENDED, 120)
            assert original["status"] == "succeeded", original["error"]
            record = original["reproducibility"]
            assert record["service"]["version"] == "0.1.0" and len(record["service"]["git_commit"]) == 40
            assert isinstance(record["service"]["git_dirty"], bool)
            assert set(record["packages"]) == {"torch", "torchvision", "numpy"} and record["python"].startswith("3.")
            assert record["blas"]["numpy"] and record["cpu"] and record["gpu"] is None
            # issue 46: `cpus: 1` (the default) trains with one thread, here on a machine of two cores or more
            if spec is TORCH:
                assert record["threads"] == {"blas": 1, "torch": 1, "torch_interop": record["threads"]["torch_interop"]}
                assert "+" in record["packages"]["torch"]  # with its build
            else:  # the NumPy MLP does not import torch: nothing of its run depends on torch's threads or BLAS
                assert record["threads"] == {"blas": 1} and record["blas"]["torch"] is None
            assert record["data"]["dataset"] == "cifar10" and len(record["data"]["sha256"]) == 64
            assert record["runtime"]["device"] == "cpu"
            answer = client.post(f"/jobs/{original['id']}/reproduce")
            assert answer.status_code == 201 and answer.headers["location"] == f"/jobs/{answer.json()['id']}"
            copy = answer.json()
            assert copy["reproduces"] == original["id"] and copy["spec"] == original["spec"]
            assert wait_for_status(client, copy["id"], ENDED, 120)["status"] == "succeeded"
            verdict = _verdict(client, copy["id"])
            assert verdict["status"] == "identical", verdict
            assert verdict["record_differences"] == {} and set(verdict["largest_differences"].values()) == {0.0}
        environment = {**os.environ, "CIFAR_JOBS_URL": service.url, "COLUMNS": "400"}
        command = [sys.executable, "-m", "cli", "status", str(copy["id"])]
        shown = subprocess.run(command, capture_output=True, text=True, timeout=60, env=environment)
        assert f"reproduces job {original['id']}" in shown.stdout, shown
        assert (
            f"data cifar10 {record['data']['sha256'][:12]}" in shown.stdout
            and "record: cifar-jobs 0.1.0" in shown.stdout
        )
        refused = client.get(f"/jobs/{original['id']}/reproduction")
        assert refused.status_code == 409 and refused.json()["message"].startswith(
            f"job {original['id']} reproduces no job"
        )
        running = client.post("/jobs", json={**TORCH, "max_steps": 100000, "eval_every": 100000}).json()["id"]
        early = client.post(f"/jobs/{running}/reproduce")
        assert early.status_code == 409 and "is reproduced once it has ended" in early.json()["message"]
        client.post(f"/jobs/{running}/cancel")


def test_a_reproduction_in_another_precision_says_what_differed(service_without_worker: Service) -> None:
    """The original trains where bfloat16 is the CPU's verdict, the copy where it is not: the curves differ, and the
    verdict names the precision."""
    service = service_without_worker
    with service.client() as client:
        service.env = {**service.env, CPU_BF16_ENV: "1"}
        bf16_worker = service.start_worker("bf16")
        original = wait_for_status(client, client.post("/jobs", json=CONVNET).json()["id"], ENDED, 180)
        assert original["status"] == "succeeded" and original["reproducibility"]["runtime"]["precision"] == "bf16"
        stop_process(bf16_worker)
        service.env = {**service.env, CPU_BF16_ENV: "0"}
        service.start_worker("float32")
        copy = client.post(f"/jobs/{original['id']}/reproduce").json()
        assert wait_for_status(client, copy["id"], ENDED, 180)["status"] == "succeeded"
        verdict = _verdict(client, copy["id"])
    assert verdict["status"] == "different"
    assert verdict["record_differences"]["runtime.precision"] == ["bf16", "float32"]
    assert max(verdict["largest_differences"].values()) > 0 and verdict["points_in_one_curve_only"] == 0
