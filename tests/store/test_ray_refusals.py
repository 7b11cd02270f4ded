"""A submission the Ray cluster refuses (issue 40, finding 9): the attempt counts as lost, so a job Ray always
refuses fails after its max_attempts instead of being claimed first again at every pass (nothing behind it
started). The cluster's Jobs API is the one part stood in for: the refusal is what it answers."""

from typing import Any

import pytest
import ray.job_submission
from sqlalchemy.orm import Session, sessionmaker

from specs import parse_job_spec
from store.attempts import claim_next, jobs_by_id
from store.jobs import create_job, find_job
from workers.ray_dispatcher import DispatcherSettings, RayJobs


class RefusingCluster:
    """A Jobs API client whose cluster refuses every submission, as Ray's does a runtime environment it cannot
    set up."""

    def __init__(self, address: str) -> None:
        self.address = address

    def submit_job(self, **_submission: Any) -> str:
        raise RuntimeError("Request failed with status code 400: runtime_env is invalid")


def test_a_job_ray_always_refuses_fails_after_its_attempts(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ray.job_submission, "JobSubmissionClient", RefusingCluster)
    placement = RayJobs(DispatcherSettings(ray_address="http://127.0.0.1:9"), sessions)
    with sessions() as session:
        refused = create_job(session, parse_job_spec({"model": "numpy_mlp", "max_attempts": 2, "priority": 5}))[0].id
        session.commit()
        behind = create_job(session, parse_job_spec({"model": "numpy_mlp"}))[0].id
        session.commit()
    statuses = []
    for _ in range(2):
        with sessions() as session:
            attempt = claim_next(sessions, "ray")
            assert attempt is not None and attempt.job_id == refused
            placement.place(jobs_by_id(session, [refused])[refused], attempt)
            statuses.append(find_job(session, refused).status)
    assert statuses == ["queued", "failed"]
    with sessions() as session:
        job = find_job(session, refused)
        assert job.error is not None and job.error.startswith("Ray refused its submission: Request failed")
        next_up = claim_next(sessions, "ray")
    assert next_up is not None and next_up.job_id == behind  # what waited behind it starts
