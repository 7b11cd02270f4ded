"""The sweep driver's pass, in process on the real database: bounded and fair across sweeps, a sweep whose
proposals are all refused fails with the reason, no trial is created once a cancel has committed, and the
evaluations shown to the pruner are those the job-events outbox tells of (all of them at a resync)."""

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from specs import job_spec_adapter
from store.points import add_points
from store.sweeps import add_trial, cancel_sweep, create_sweep, evaluations, find_sweep, sweep_trials
from store.tables import Job, MetricPoint
from store.unit_of_work import unit_of_work
from sweeps.driver import MAX_NEW_TRIALS_PER_PASS, MAX_REFUSED_IN_A_ROW, EvaluationNews, advance_all
from sweeps.spec import SweepSpec

BASE = {"model": "torch_mlp", "hidden_units": [16], "max_steps": 200}
# every combination refused: warm-up longer than training, whatever is drawn
ALL_REFUSED = {"base": BASE, "search": {"warmup_steps": {"uniform": [150, 199]}, "max_steps": {"uniform": [100, 149]}},
               "method": "random", "trials": 500, "max_concurrent": 8}  # fmt: skip
ORDINARY = {"base": BASE, "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}}, "method": "random", "trials": 4}


def new_sweep(sessions: sessionmaker[Session], request: dict[str, Any]) -> int:
    spec = SweepSpec.model_validate(request)
    with unit_of_work(sessions) as session:
        return create_sweep(session, spec.name, spec.model_dump(mode="json")).id


def trials(sessions: sessionmaker[Session], sweep_id: int) -> int:
    with sessions() as session:
        return len(sweep_trials(session, sweep_id))


def test_a_sweep_whose_proposals_are_all_refused_neither_starves_others_nor_runs_forever(
    sessions: sessionmaker[Session],
) -> None:
    refused_a, refused_b = new_sweep(sessions, ALL_REFUSED), new_sweep(sessions, ALL_REFUSED)
    ordinary = new_sweep(sessions, ORDINARY)
    advance_all(sessions)  # one pass: bounded work for each sweep, and the ordinary one gets its trials
    assert trials(sessions, refused_a) == trials(sessions, refused_b) == MAX_NEW_TRIALS_PER_PASS
    assert trials(sessions, ordinary) >= 1
    passes = 1
    while passes < 100:
        with sessions() as session:
            if find_sweep(session, refused_a).status != "running":
                break
        advance_all(sessions)
        passes += 1
    with sessions() as session:
        failed = find_sweep(session, refused_a)
        assert failed.status == "failed" and failed.finished_at is not None
        assert f"its last {MAX_REFUSED_IN_A_ROW} proposals were refused" in (failed.error or "")
        assert "warmup_steps" in (failed.error or "") or "warm-up" in (failed.error or "")
        assert find_sweep(session, ordinary).status == "running"
    assert passes <= MAX_REFUSED_IN_A_ROW // MAX_NEW_TRIALS_PER_PASS + 1
    assert trials(sessions, refused_a) == MAX_REFUSED_IN_A_ROW


def test_no_trial_is_created_after_a_cancel_commits(sessions: sessionmaker[Session]) -> None:
    sweep_id = new_sweep(sessions, ORDINARY)
    spec = SweepSpec.model_validate(ORDINARY)
    with sessions() as session:
        cancel_sweep(session, sweep_id)
        session.commit()
    job_spec = job_spec_adapter.validate_python({**spec.base_spec(), "learning_rate": 0.001})
    with sessions() as session:  # a driver pass that had proposed before the cancel, inserting after it
        assert add_trial(session, sweep_id, 0, {"learning_rate": 0.001}, {}, job_spec) is False
        session.commit()
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert trials(sessions, sweep_id) == 0


def test_a_grid_sweep_runs_each_point_once_even_when_one_is_refused(sessions: sessionmaker[Session]) -> None:
    """A failed random or TPE trial is replaced by a new proposal; a grid has no new proposal to make: a
    replacement was a copy of a point already run (seen: three trials of one point in a grid of six)."""
    search = {"warmup_steps": {"choices": [0, 150]}, "max_steps": {"choices": [100, 200]}}
    sweep_id = new_sweep(sessions, {"base": BASE, "search": search, "method": "grid", "max_concurrent": 8})
    for _ in range(3):
        advance_all(sessions)
    with sessions() as session:
        views = sweep_trials(session, sweep_id)
    points = sorted((view.trial.params["warmup_steps"], view.trial.params["max_steps"]) for view in views)
    assert points == [(0, 100), (0, 200), (150, 100), (150, 200)]  # each once
    assert [view.trial.error is not None for view in views].count(True) == 1  # warm-up 150 of 100 steps


PRUNED = {"base": {**BASE, "max_steps": 400, "eval_every": 100}, "search": {"learning_rate": {"choices": [1e-3, 1e-2]}},
          "method": "grid", "max_concurrent": 2,
          "early_stopping": {"method": "successive_halving", "min_steps": 100}}  # fmt: skip


def test_the_pruner_is_shown_the_evaluations_the_outbox_tells_of_and_the_rest_at_the_resync(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def pruned_through() -> list[int]:
        with sessions() as session:
            return [view.trial.pruned_through_step for view in sweep_trials(session, sweep_id)]

    sweep_id = new_sweep(sessions, PRUNED)
    news = EvaluationNews(resync_every_passes=3)
    advance_all(sessions, news=news)  # the first pass looks at every sweep, and creates both trials
    with sessions() as session:
        first, second = (view.trial.job_id for view in sweep_trials(session, sweep_id))
        assert first is not None and second is not None
        add_points(session, first, [(100, "train", 2.0, 0.2), (100, "test", 2.0, 0.25)])  # as a worker's flush
        session.commit()
    advance_all(sessions, news=news)
    assert pruned_through() == [100, 0]
    with sessions() as session:  # points without their event: as an event committed after a later one was read
        session.add(MetricPoint(job_id=second, step=100, split="test", loss=2.0, accuracy=0.3))
        session.commit()
    reads: list[list[int]] = []

    def counting(session: Session, job_ids: list[int], metric: str) -> dict[int, list[tuple[int, float]]]:
        reads.append(list(job_ids))
        return evaluations(session, job_ids, metric)

    monkeypatch.setattr("sweeps.driver.evaluations", counting)
    advance_all(sessions, news=news)  # nothing in the outbox since the last pass: no evaluation is read
    assert pruned_through() == [100, 0] and reads == []
    advance_all(sessions, news=news)  # the third pass since the first: every sweep's evaluations
    assert pruned_through() == [100, 100] and reads
