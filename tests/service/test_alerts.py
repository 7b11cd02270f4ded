"""Alert rules on real training processes: a NaN loss, a curve that stopped improving, a process that hangs."""

import os
import signal
import subprocess
import sys
from typing import Any

from harness.waiting import wait_for_status, wait_for_step, wait_until
from tests.conftest import Service, children_of

DIVERGING = {"model": "torch_mlp", "hidden_units": [32], "batch_size": 40, "max_steps": 60, "eval_every": 20,
             "log_every": 5, "optimizer": "sgd", "learning_rate": 10, "preprocessing": "assignment"}  # fmt: skip


def test_a_nan_loss_stops_the_job_when_its_rule_says_so_and_is_an_alert_either_way(service: Service) -> None:
    with service.client() as client:
        stopping = client.post("/jobs", json={**DIVERGING, "alerts": [{"when": "loss_not_finite", "action": "stop"}]})
        notifying = client.post("/jobs", json={**DIVERGING, "alerts": [{"when": "loss_not_finite"}]})
        stopped = wait_for_status(client, stopping.json()["id"], {"stopped_early", "failed", "succeeded"}, 120)
        assert stopped["status"] == "stopped_early", stopped["error"]
        (fired,) = stopped["alerts_fired"]
        assert (fired["rule"], fired["when"], fired["action"], fired["step"]) == (0, "loss_not_finite", "stop", 10)
        assert fired["message"] == "training loss became nan at step 10"
        assert stopped["error"] == "stopped by alert rule 0 (loss_not_finite): training loss became nan at step 10"
        assert stopped["trained_model"] is not None  # it keeps its model and its points
        points = client.get(f"/jobs/{stopped['id']}/metrics").json()["points"]
        assert [p["step"] for p in points if p["split"] == "train"] == [5]
        events = client.get(f"/jobs/{stopped['id']}/events").text
        assert "event: alert" in events and "loss_not_finite" in events
        status = subprocess.run([sys.executable, "-m", "cli", "status", str(stopped["id"])], capture_output=True,
                                text=True, timeout=60, env={**os.environ, "CIFAR_JOBS_URL": service.url,
                                                            "COLUMNS": "300"})  # fmt: skip
        assert "alert 0 (loss_not_finite, stop): training loss became nan at step 10" in status.stdout, status

        failed = wait_for_status(client, notifying.json()["id"], {"stopped_early", "failed", "succeeded"}, 120)
        assert failed["status"] == "failed" and "training loss became nan at step 10" in failed["error"]
        assert failed["progress"]["step"] == stopped["progress"]["step"] == 10  # the step its error names (was 5)
        assert [a["when"] for a in failed["alerts_fired"]] == ["loss_not_finite"]


def _expected_no_improvement(points: list[dict[str, Any]], evals: int) -> int | None:
    """The step at which test accuracy has not beaten its best for `evals` evaluations, read off the curve."""
    best, since = None, 0
    for point in (p for p in points if p["split"] == "test"):
        if best is None or point["accuracy"] > best:
            best, since = point["accuracy"], 0
        else:
            since += 1
            if since >= evals:
                return int(point["step"])
    return None


def test_no_improvement_fires_where_the_curve_says_and_stops_the_job(service: Service) -> None:
    spec = {"model": "torch_mlp", "hidden_units": [32], "batch_size": 40, "max_steps": 400, "eval_every": 5,
            "log_every": 5, "optimizer": "adam", "learning_rate": 0.01, "preprocessing": "standardize",
            "alerts": [{"when": "no_improvement", "metric": "accuracy", "split": "test", "evals": 3,
                        "action": "stop"}]}  # fmt: skip
    with service.client() as client:
        job = wait_for_status(client, client.post("/jobs", json=spec).json()["id"], {"stopped_early", "failed",
                                                                                     "succeeded"}, 120)  # fmt: skip
        points = client.get(f"/jobs/{job['id']}/metrics").json()["points"]
    expected = _expected_no_improvement(points, 3)
    assert expected is not None and expected < 400, "the curve kept improving: the test needs a flatter curve"
    assert job["status"] == "stopped_early", job["error"]
    (fired,) = job["alerts_fired"]
    assert fired["step"] == expected and fired["when"] == "no_improvement"
    assert job["progress"]["step"] == expected  # it stopped at the next check, the step it fired on
    assert job["error"].startswith("stopped by alert rule 0 (no_improvement): test accuracy has not improved")


def test_a_hung_training_process_fires_its_stalled_rule(service: Service) -> None:
    spec = {"model": "torch_mlp", "hidden_units": [64], "batch_size": 20, "max_steps": 100000, "log_every": 10,
            "eval_every": 100000, "alerts": [{"when": "stalled", "seconds": 2, "action": "stop"}]}  # fmt: skip
    worker = service.processes[-1]
    with service.client() as client:
        job_id = client.post("/jobs", json=spec).json()["id"]
        wait_for_step(client, job_id, 20)
        (child,) = wait_until(lambda: children_of(worker.pid), 10, "the training process")
        os.kill(child, signal.SIGSTOP)  # hung: it writes nothing, while its worker's heartbeat goes on
        try:
            job = wait_until(lambda: (j := client.get(f"/jobs/{job_id}").json())["alerts_fired"] and j, 30,
                             "the stalled alert")  # fmt: skip
            assert job["status"] == "running"  # the heartbeat kept it: it was not taken for a lost worker
            (fired,) = job["alerts_fired"]
            assert (fired["when"], fired["action"]) == ("stalled", "stop")
            assert (
                fired["message"].startswith("no training progress for ") and "the rule allows 2 s" in fired["message"]
            )
        finally:
            os.kill(child, signal.SIGCONT)
        ended = wait_for_status(client, job_id, {"stopped_early", "failed", "succeeded", "cancelled"}, 60)
        assert ended["status"] == "stopped_early"
        assert ended["error"].startswith("stopped by alert rule 0 (stalled): no training progress for ")
