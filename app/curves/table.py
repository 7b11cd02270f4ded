"""The web page's jobs table as `/events` streams it: the newest jobs' rows."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from store.jobs import JobFilter, list_jobs
from store.points import latest_test_accuracy
from store.tables import JobStatus

TABLE_ROWS = 200


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


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
                "best_test_accuracy": (job.final_metrics or {}).get("best_test_accuracy"),
                "steps_per_second": (job.final_metrics or {}).get("steps_per_second"),
                "started_at": _iso(job.started_at),
                "finished_at": _iso(job.finished_at),
                "tags": job.tags or [],
                "spec": job.spec,  # the page shows the fields that differ among the rows
                "owner_id": job.owner_id,
                "owner": job.owner.name if job.owner is not None else None,
            }
            for job in jobs
        ]
