"""`POST /jobs?dry_run=true`: a plan, nothing queued: costs, the expected time from earlier jobs of the same shape,
the queue ahead, and why no executor could take it."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from models.kinds.common import SPEC_VERSION
from specs import parse_job_spec
from store.attempts import claim_next, succeed_attempt
from store.executors import register_executor
from store.jobs import create_job
from store.tables import JobAttempt
from store.unit_of_work import unit_of_work
from tests.conftest import local_client

SPEC = {"model": "torch_mlp", "hidden_units": [64], "batch_size": 50, "max_steps": 1000, "eval_every": 250}


def test_a_plan_queues_nothing_and_says_why_no_executor_could_take_it(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url)
    with local_client(create_app(settings)) as client:
        plan = client.post("/jobs?dry_run=true&probe=false", json={**SPEC, "gpus": 2})
        assert plan.status_code == 200, plan.text
        body = plan.json()
        assert body["waiting_reason"] == "no worker is running: start one (make serve, or python -m workers)"
        assert body["parameters"] == 3072 * 64 + 64 + 64 * 10 + 10 and body["evaluations"] == 4
        assert body["flops_per_train_step"] == 3 * 50 * 2 * (3072 * 64 + 64 * 10)
        assert body["expected_seconds"] is None and body["expected_from"] is None  # no history, no probe asked
        with sessions() as session:
            register_executor(session, "w1", gpus=1, cpus=2, spec_version=SPEC_VERSION)
            session.commit()
        again = client.post("/jobs?dry_run=true&probe=false", json={**SPEC, "gpus": 2}).json()
        assert again["waiting_reason"] == "needs 2 GPUs; the largest running worker has 1: it waits for one"
        assert client.post("/jobs?dry_run=true&probe=false", json=SPEC).json()["waiting_reason"] is None
        on_a_gpu = client.post("/jobs?dry_run=true", json={**SPEC, "device": "cuda"}).json()  # probe asked for
        assert on_a_gpu["expected_seconds"] is None and on_a_gpu["probe_step_seconds"] is None
        assert on_a_gpu["note"].startswith("no probe: the job trains on a GPU and plans probe on the API's CPU")
        assert client.get("/jobs").json()["count"] == 0  # nothing was queued
        bad = client.post("/jobs?dry_run=true", json={**SPEC, "batch_size": 0})
        assert bad.status_code == 422 and bad.json()["message"].startswith("batch_size")


def test_the_expected_time_comes_from_earlier_jobs_of_the_same_shape_and_the_queue_ahead(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:  # an earlier job of the same shape (another seed and rate): 20 steps/s
        create_job(session, parse_job_spec({**SPEC, "seed": 3, "learning_rate": 0.01, "max_steps": 400}))
        session.commit()
        attempt = claim_next(sessions, "w")
    assert attempt is not None
    metrics = {"steps_per_second": 20.0, "train_seconds": 20.0, "eval_seconds": 2.0}  # 2 evaluations of 1 s
    with unit_of_work(sessions) as session:
        assert succeed_attempt(session, attempt, metrics, 400, b"model")
    with sessions() as session:  # its attempt ran 25 s: 3 s of start-up besides training and evaluating
        (ran,) = session.scalars(select(JobAttempt).where(JobAttempt.job_id == attempt.job_id)).all()
        ran.ended_at = ran.started_at + timedelta(seconds=25)
        # and one preempted halfway, back an hour later: its two attempts ran 12.5 s each, two start-ups in 25 s
        preempted = create_job(session, parse_job_spec({**SPEC, "seed": 4, "max_steps": 400}))[0]
        preempted.status, preempted.final_metrics = "succeeded", metrics
        starts = ((1, ran.started_at), (2, ran.started_at + timedelta(hours=1)))
        session.add_all([JobAttempt(job_id=preempted.id, number=number, started_at=start,
                                    ended_at=start + timedelta(seconds=12.5)) for number, start in starts])  # fmt: skip
        session.commit()
        for _ in range(2):
            create_job(session, parse_job_spec({**SPEC, "max_steps": 400}))  # queued, ahead of a new job
            session.commit()
        register_executor(session, "w1", gpus=0, cpus=2, spec_version=SPEC_VERSION)
        session.commit()
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url)
    with local_client(create_app(settings)) as client:
        plan = client.post("/jobs?dry_run=true&probe=false", json=SPEC).json()
        assert plan["expected_from"] == "the median of 2 earlier jobs of the same shape"
        start_up = (3.0 + 3.0 / 2) / 2  # the median of 3 s and 1.5 s a start (the hour between attempts not counted)
        assert plan["expected_seconds"] == pytest.approx(1000 / 20 + 4 * 1.0 + start_up, abs=0.051)  # to 0.1 s
        assert plan["queue_position"] == 2
        assert plan["expected_wait_seconds"] == pytest.approx(2 * (400 / 20 + 2 * 1.0 + start_up), abs=0.051)
        urgent = client.post("/jobs?dry_run=true&probe=false", json={**SPEC, "priority": 5}).json()
        assert urgent["queue_position"] == 0 and urgent["expected_wait_seconds"] == 0.0
        other_shape = client.post("/jobs?dry_run=true&probe=false", json={**SPEC, "hidden_units": [32]}).json()
        assert other_shape["expected_seconds"] is None
        sweep = {"base": SPEC, "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}}, "method": "random",
                 "trials": 6, "max_concurrent": 2,
                 "early_stopping": {"min_steps": 100, "reduction_factor": 3}}  # fmt: skip
        sweep_plan = client.post("/sweeps?dry_run=true&probe=false", json=sweep)
        assert sweep_plan.status_code == 200, sweep_plan.text
        body = sweep_plan.json()
        # rungs at 100, 300 and 900 steps: checked at the evaluations at 250 and 500 (900's is the end, at 1000)
        per_trial = 2 / 3 * 250 + 1 / 3 * 2 / 3 * 500 + 1 / 9 * 1000
        assert body["trials"] == 6 and body["steps_without_early_stopping"] == 6000
        assert body["expected_steps"] == round(6 * per_trial)
        assert body["trial_plan"]["expected_seconds"] == plan["expected_seconds"] and body["live_executors"] == 1
        # six trials two at a time, each at the same shape's speed: 1/20 s a step, 1 s an evaluation, a start-up
        assert body["expected_seconds_without_early_stopping"] == pytest.approx(
            6 * (1000 / 20 + 4 * 1.0 + start_up) / 2, abs=0.06
        )
        assert body["expected_seconds"] == pytest.approx(6 * (round(per_trial) / 20 + 2 * 1.0 + start_up) / 2, abs=0.06)
        assert client.get("/sweeps").json()["count"] == 0  # nothing was stored


def succeeded_earlier(sessions: sessionmaker[Session], spec: dict[str, object], metrics: dict[str, float],
                      ran_seconds: float) -> None:  # fmt: skip
    """A succeeded job of `spec` whose one attempt ran `ran_seconds`, stored as a worker would leave it."""
    with unit_of_work(sessions) as session:
        create_job(session, parse_job_spec(spec))
    attempt = claim_next(sessions, "w")
    assert attempt is not None
    with unit_of_work(sessions) as session:
        assert succeed_attempt(session, attempt, metrics, int(spec["max_steps"]), b"model")  # type: ignore[call-overload]
    with unit_of_work(sessions) as session:
        (ran,) = session.scalars(select(JobAttempt).where(JobAttempt.job_id == attempt.job_id)).all()
        ran.ended_at = ran.started_at + timedelta(seconds=ran_seconds)


@pytest.mark.parametrize("probe_seconds", [0.0, 0.001])  # probes off; a probe that cannot finish in its time
def test_without_its_shape_or_a_probe_the_time_is_estimated_from_flops_at_this_machines_speed_for_the_kind(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session], probe_seconds: float
) -> None:
    """Issue 45, point 5: the first plan of a new shape on a busy machine answered `expected: unknown (the probe
    took over 8 s)`. Two earlier NumPy MLPs of other shapes ran here at 2.0 and 4.0 GFLOP/s; a wider one is
    estimated from its FLOPs at their median, with their fastest and slowest as its range."""
    fast = {"model": "numpy_mlp", "hidden_units": [64], "batch_size": 50, "max_steps": 1000, "eval_every": 500}
    slow = {**fast, "hidden_units": [32]}

    def forward(hidden: int) -> int:
        return 2 * (3072 * hidden + hidden * 10)

    def steps_per_second(hidden: int, gflops: float) -> float:
        return gflops * 1e9 / (3 * forward(hidden) * 50)

    fast_rate, slow_rate = steps_per_second(64, 4.0), steps_per_second(32, 2.0)
    # each: 1,000 steps, 2 evaluations of 1 s, and 3 s of start-up
    succeeded_earlier(sessions, fast, {"steps_per_second": fast_rate, "eval_seconds": 2.0}, 1000 / fast_rate + 5)
    succeeded_earlier(sessions, slow, {"steps_per_second": slow_rate, "eval_seconds": 2.0}, 1000 / slow_rate + 5)
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, plan_probe_seconds=probe_seconds)
    wide = {**fast, "hidden_units": [256], "max_steps": 2000}
    with local_client(create_app(settings)) as client:
        plan = client.post("/jobs?dry_run=true", json=wide).json()
    assert plan["note"] == ("probes are off (PLAN_PROBE_SECONDS=0)" if probe_seconds == 0 else
                            "the probe took over 0.001 s (PLAN_PROBE_SECONDS): stopped")  # fmt: skip
    typical = 3.0e9  # the median of 2 and 4 GFLOP/s

    def expected(rate: float) -> float:
        return 2000 * 3 * forward(256) * 50 / rate + 4 * forward(256) * 10_000 / rate + 3.0

    assert plan["expected_seconds"] == pytest.approx(expected(typical), abs=0.051)
    assert plan["expected_seconds_range"] == pytest.approx([expected(4e9), expected(2e9)], abs=0.051)
    assert plan["expected_from"].startswith("an estimate: the network's ")
    assert (
        "at 3 GFLOP/s, the median speed of 2 earlier jobs of numpy_mlp on this machine (2-4 GFLOP/s"
        in (plan["expected_from"])
    )
