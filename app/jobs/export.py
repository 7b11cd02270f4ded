"""The runs table as CSV (`GET /jobs.csv`): a row a job, its spec fields and final metrics as columns."""

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.http.csv_body import csv_chunks, spreadsheet_safe
from app.http.refusals import TooLarge
from app.jobs.schemas import JobPublic
from app.jobs.service import jobs_page
from store.jobs import JobFilter, JobOrder

MAX_EXPORTED_JOBS = 20_000  # one answer's bound; a filter narrows a larger selection
PAGE = 500
RUN_COLUMNS = ("id", "name", "model", "status", "owner", "tags", "created_at", "started_at", "finished_at",
               "running_seconds", "step", "max_steps", "sweep", "trial")  # fmt: skip


def every_job(session: Session, which: JobFilter, order: JobOrder) -> list[JobPublic]:
    """Every job `which` selects, in `order`, page by page in one session; TooLarge (413) past MAX_EXPORTED_JOBS."""
    at_most = MAX_EXPORTED_JOBS
    first = jobs_page(session, which, PAGE, 0, order)
    if first.count > at_most:
        raise TooLarge(f"{first.count:,} jobs selected, over the {at_most:,} one CSV holds: filter them (status, "
                       f"model, tag, owner, where)")  # fmt: skip
    jobs = list(first.data)
    while len(jobs) < first.count:
        page = jobs_page(session, which, PAGE, len(jobs), order).data
        if not page:
            break
        jobs += page
    return jobs


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return spreadsheet_safe(value)
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def _row(job: JobPublic) -> dict[str, Any]:
    return {
        "id": job.id, "name": job.name, "model": job.model, "status": job.status.value, "owner": job.owner,
        "tags": " ".join(job.tags), "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "running_seconds": job.running_seconds, "step": job.progress.step, "max_steps": job.progress.max_steps,
        "sweep": job.sweep.id if job.sweep else None, "trial": job.sweep.trial if job.sweep else None,
    }  # fmt: skip


def runs_csv(jobs: Sequence[JobPublic]) -> Iterator[str]:
    """The jobs as CSV: RUN_COLUMNS, then every spec field any of them has (in the order first met; `name` and
    `model` are columns already), then every final metric."""
    spec_fields = list(dict.fromkeys(key for job in jobs for key in job.spec if key not in ("name", "model")))
    metrics = list(dict.fromkeys(key for job in jobs for key in (job.final_metrics or {})))
    taken = set(RUN_COLUMNS) | set(spec_fields)
    header = [*RUN_COLUMNS, *spec_fields, *(key if key not in taken else f"final_{key}" for key in metrics)]
    rows = (
        [_cell(value) for value in _row(job).values()]
        + [_cell(job.spec.get(key)) for key in spec_fields]
        + [_cell((job.final_metrics or {}).get(key)) for key in metrics]
        for job in jobs
    )
    return csv_chunks(header, rows)
