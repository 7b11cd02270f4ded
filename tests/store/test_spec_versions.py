"""A job's spec carries the schema version it was written with; an executor claims only the versions it
knows, so a worker older than the API (mid-upgrade) leaves a newer spec alone, and the job says why it
waits (two sweep trials were once lost to that skew)."""

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.kinds.common import SPEC_VERSION
from specs import parse_job_spec
from store.attempts import claim_next
from store.executors import alive_since, register_executor, waiting_reason
from store.jobs import create_job, find_job
from store.tables import Job


def test_an_older_worker_leaves_a_newer_spec_to_a_worker_that_knows_it(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        newer, _ = create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        current, _ = create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        assert newer.spec_version == SPEC_VERSION  # stored as written
        session.execute(update(Job).where(Job.id == newer.id).values(spec_version=SPEC_VERSION + 1))
        session.commit()
        register_executor(session, "old", 0, 2, spec_version=SPEC_VERSION)
        session.commit()
        claimed = claim_next(sessions, "old", 0, 2, spec_version=SPEC_VERSION)
        assert claimed is not None and claimed.job_id == current.id  # the older job of a newer version waits
        assert claim_next(sessions, "old", 0, 2, spec_version=SPEC_VERSION) is None
        reason = waiting_reason(session, find_job(session, newer.id), alive_since(60))
        assert reason is not None and f"schema version {SPEC_VERSION + 1}" in reason and "upgrade the workers" in reason
        register_executor(session, "new", 0, 2, spec_version=SPEC_VERSION + 1)
        session.commit()
        assert waiting_reason(session, find_job(session, newer.id), alive_since(60)) is None
        upgraded = claim_next(sessions, "new", 0, 2, spec_version=SPEC_VERSION + 1)
        assert upgraded is not None and upgraded.job_id == newer.id
