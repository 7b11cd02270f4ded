"""The web page's jobs table as `/events` streams it: the newest jobs' rows."""

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from store.jobs import JobFilter, list_jobs
from store.points import latest_test_accuracy
from store.tables import JobStatus

TABLE_ROWS = 200


def table_rows(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """The newest jobs as the web page's table shows them."""
    with sessions() as session:
        jobs, _ = list_jobs(session, JobFilter(), TABLE_ROWS, 0)
        running = latest_test_accuracy(session, [job.id for job in jobs if job.status == JobStatus.running])
        return [
            {
                "id": job.id,
                "name": job.name,
                "model": job.model,
                "status": job.status,
                "step": job.step,
                "max_steps": job.max_steps,
                "test_accuracy": running.get(job.id, (job.final_metrics or {}).get("test_accuracy")),
                "tags": job.tags or [],
            }
            for job in jobs
        ]
