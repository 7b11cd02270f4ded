"""Sweeps through a real server and worker on tiny data: trials are jobs, early stopping ends the
worst, cancel, restarts; and the request checked against the model kind before anything runs."""

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bench.peers.sweeps import Search, through_service
from harness.waiting import wait_until
from tests.conftest import Service, running_service, stop_process

TINY_MLP = {
    "model": "torch_mlp",
    "hidden_units": [32],
    "optimizer": "adam",
    "batch_size": 50,
    "preprocessing": "standardize",
    "log_every": 50,
}


FAST_DRIVER = {"SWEEP_INTERVAL_SECONDS": "0.2"}


def wait_for_sweep(client: httpx.Client, sweep_id: int, statuses: set[str], timeout: float = 180) -> dict[str, Any]:
    sweep: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        sweep.update(client.get(f"/sweeps/{sweep_id}").json())
        return dict(sweep) if sweep["status"] in statuses else None

    return wait_until(reached, timeout, lambda: f"sweep {sweep_id} reaching {sorted(statuses)}: {sweep}", every=0.2)


def driver_passes(client: httpx.Client) -> float:
    """The sweep driver's passes, from Prometheus (the API reads them from the driver's lease)."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "cifar_sweep_driver_passes":
                return sample.value
    raise AssertionError("no cifar_sweep_driver_passes in /metrics")


def wait_for_driver_passes(client: httpx.Client, passes: int) -> None:
    start = driver_passes(client)
    wait_until(lambda: driver_passes(client) >= start + passes, 60, f"{passes} sweep driver passes")


def trials_with(client: httpx.Client, sweep_id: int, status: str) -> int:
    counts: dict[str, int] = client.get(f"/sweeps/{sweep_id}").json()["counts"]
    return counts.get(status, 0)


def every_trial_cancelled(client: httpx.Client, sweep_id: int) -> dict[str, Any] | None:
    sweep: dict[str, Any] = client.get(f"/sweeps/{sweep_id}").json()
    return sweep if set(sweep["counts"]) == {"cancelled"} else None


def intervals_overlap_at_most(jobs: list[dict[str, Any]], limit: int) -> bool:
    """No moment had more than `limit` of these jobs between their creation and their end."""
    events = []
    for job in jobs:
        events.append((datetime.fromisoformat(job["created_at"]), 1))
        events.append((datetime.fromisoformat(job["finished_at"]), -1))
    live = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        live += change
        if live > limit:
            return False
    return True


@pytest.fixture
def sweep_service(tmp_path: Path, data_dir: Path, database_url: str) -> Any:
    with running_service(tmp_path, data_dir, database_url, FAST_DRIVER) as service:
        service.start_worker()
        service.start_sweep_driver()
        yield service


RATES = [0.05, 1e-6, 2e-6, 4e-6]


def test_grid_sweep_stops_the_worst_trials_early_and_ranks_the_rest(sweep_service: Service) -> None:
    request = {
        "name": "learning rates",
        "base": {**TINY_MLP, "optimizer": "sgd", "max_steps": 3000, "eval_every": 100},
        # one rate that learns the tiny classes within 100 steps, three that leave them at chance
        "search": {"learning_rate": {"choices": RATES}},
        "method": "grid",
        "max_concurrent": 1,
        "early_stopping": {"method": "successive_halving", "min_steps": 100, "reduction_factor": 4},
        "seed": 1,
    }
    with sweep_service.client() as client:
        created = client.post("/sweeps", json=request)
        assert created.status_code == 201, created.text
        sweep_id = created.json()["id"]
        assert created.headers["location"] == f"/sweeps/{sweep_id}"
        assert created.json()["trials"] == 4  # the grid's size

        sweep = wait_for_sweep(client, sweep_id, {"finished"})
        board = sweep["leaderboard"]
        assert sweep["trials_created"] == 4 and len(board) == 4
        assert sorted(t["params"]["learning_rate"] for t in board) == sorted(RATES)
        objectives = [t["objective"] for t in board]
        assert objectives == sorted(objectives, reverse=True)  # best first
        best = board[0]
        assert best["params"]["learning_rate"] == 0.05
        assert best["status"] == "succeeded" and best["step"] == 3000  # the best runs to the end
        stopped = [t for t in board if t["status"] == "stopped_early"]
        assert stopped, [(t["number"], t["status"], t["step"], t["objective"]) for t in board]
        for trial in stopped:  # stopped before max_steps, with their points and model kept
            assert trial["step"] < 3000 and trial["objective"] < best["objective"]
            job = client.get(f"/jobs/{trial['job_id']}").json()
            assert job["trained_model"] is not None and job["final_metrics"]["test_accuracy"] == trial["objective"]
            assert client.get(f"/jobs/{trial['job_id']}/model").status_code == 200
        # one trial at a time and reduction_factor 4: a trial after the best must match it at the first rung
        for trial in board:
            if trial["number"] > best["number"]:
                assert trial["status"] == "stopped_early", board
        assert sweep["steps_spent"] < sweep["steps_if_run_to_end"]
        assert sweep["counts"]["succeeded"] + sweep["counts"]["stopped_early"] == 4

        plot = client.get(f"/sweeps/{sweep_id}/plot.png")
        assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(plot.content))
        assert image.size == (1100, 450)
        assert len(image.convert("RGB").getcolors(maxcolors=100_000) or []) > 20  # markers and curves, not blank

        listed = client.get("/sweeps").json()
        assert listed["count"] == 1 and listed["data"][0]["best"]["job_id"] == best["job_id"]


@pytest.mark.postgresql
def test_tpe_sweep_keeps_max_concurrent_and_survives_restarts(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    request = {
        "base": {**TINY_MLP, "max_steps": 400, "eval_every": 100},
        "search": {
            "learning_rate": {"log_uniform": [1e-4, 3e-2]},
            "hidden_units": {"choices": [[16], [32, 16]]},
            "batch_size": {"uniform": [20, 60]},
        },
        "method": "tpe",
        "trials": 6,
        "max_concurrent": 2,
    }
    with running_service(tmp_path / "first", data_dir, database_url, FAST_DRIVER) as service:
        worker = service.start_worker()
        service.start_sweep_driver()
        with service.client() as client:
            sweep_id = client.post("/sweeps", json=request).json()["id"]
            wait_until(lambda: trials_with(client, sweep_id, "succeeded") >= 2, 60, "two trials succeeded")
        stop_process(worker)  # the running trial checkpoints and goes back to the queue
    with running_service(tmp_path / "second", data_dir, database_url, FAST_DRIVER) as service:
        service.start_worker()
        service.start_sweep_driver()  # the first one gave its lease back when it stopped: this one takes it at once
        with service.client() as client:
            sweep = wait_for_sweep(client, sweep_id, {"finished"})
            jobs = [client.get(f"/jobs/{t['job_id']}").json() for t in sweep["leaderboard"]]
            every_job = client.get("/jobs", params={"limit": 500}).json()

    assert sorted(t["number"] for t in sweep["leaderboard"]) == list(range(6))
    assert every_job["count"] == 6  # one job per trial: nothing created twice across the restart
    assert all(job["status"] == "succeeded" for job in jobs)
    assert intervals_overlap_at_most(jobs, 2)
    for trial, job in zip(sweep["leaderboard"], jobs, strict=True):
        assert 1e-4 <= trial["params"]["learning_rate"] <= 3e-2
        assert isinstance(trial["params"]["batch_size"], int) and 20 <= trial["params"]["batch_size"] <= 60
        assert job["spec"]["batch_size"] == trial["params"]["batch_size"]
        assert job["spec"]["hidden_units"] == trial["params"]["hidden_units"]
        assert job["spec"]["optimizer"] == "adam"  # from the base


def test_cancel_sweep_cancels_its_trials_and_creates_no_more(sweep_service: Service) -> None:
    request = {
        "base": {**TINY_MLP, "max_steps": 200_000, "eval_every": 1000, "log_every": 100},
        "search": {"learning_rate": {"uniform": [0.001, 0.01]}},
        "method": "random",
        "trials": 10,
        "max_concurrent": 2,
    }
    with sweep_service.client() as client:
        sweep_id = client.post("/sweeps", json=request).json()["id"]
        wait_until(lambda: trials_with(client, sweep_id, "running") >= 1, 60, "a trial running")
        cancelled = client.post(f"/sweeps/{sweep_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        sweep = wait_until(lambda: every_trial_cancelled(client, sweep_id), 60, "every trial cancelled")
        assert sweep["trials_created"] == 2
        wait_for_driver_passes(client, 3)  # passes that started after the cancel: still no new trial
        assert client.get(f"/sweeps/{sweep_id}").json()["trials_created"] == 2
        again = client.post(f"/sweeps/{sweep_id}/cancel")
        assert again.status_code == 409 and "already ended (cancelled)" in again.json()["message"]
        assert client.get("/sweeps/999").status_code == 404


def test_failed_trials_are_replaced_up_to_the_number_of_trials(sweep_service: Service) -> None:
    request = {
        "base": {**TINY_MLP, "dataset": "nowhere", "max_steps": 100},  # every trial fails at once
        "search": {"learning_rate": {"uniform": [0.001, 0.01]}},
        "method": "random",
        "trials": 2,
    }
    with sweep_service.client() as client:
        sweep_id = client.post("/sweeps", json=request).json()["id"]
        sweep = wait_for_sweep(client, sweep_id, {"finished"})
    assert sweep["trials_created"] == 4 and sweep["counts"] == {"failed": 4}  # 2 trials and 2 replacements


def test_the_sweep_peer_benchmarks_side_of_this_service_runs_at_a_tiny_size(sweep_service: Service) -> None:
    """bench/peers/sweeps.py's measurement of this service (TPE, successive halving) on tiny sizes, so it cannot rot;
    Ray Tune's side needs the `peers` extra, which `make test` does not install. Times nothing."""
    search = Search(trials=3, max_steps=30, min_steps=10, eval_every=10, threshold=0.0, batch_size=20)
    outcome = through_service(sweep_service.url, search, seed=0)
    assert (outcome.side, outcome.trials) == ("this service", 3)
    assert 0 < outcome.best_accuracy <= 1 and outcome.to_threshold_seconds is not None
