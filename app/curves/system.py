"""A job's system metrics (CPU, memory, data wait, GPU) as the API answers them: JSON or CSV, thinned to
`max_points` samples evenly spread over the run (the first and last always kept)."""

import csv
import io
import json
from collections.abc import Iterator, Sequence

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from store.jobs import find_job
from store.system_points import SYSTEM_FIELDS, SystemRow, read_system_points


def thinned(rows: Sequence[SystemRow], max_points: int) -> Sequence[SystemRow]:
    if len(rows) <= max_points:
        return rows
    keep = np.unique(np.linspace(0, len(rows) - 1, max_points).round().astype(int))
    return [rows[i] for i in keep]


def read_system(sessions: sessionmaker[Session], job_id: int, max_points: int | None = None) -> Sequence[SystemRow]:
    """The job's samples (thinned to `max_points` when given). Raises JobNotFound."""
    with sessions() as session:
        find_job(session, job_id)
        rows = read_system_points(session, job_id)
    return rows if max_points is None else thinned(rows, max_points)


def system_json(job_id: int, rows: Sequence[SystemRow]) -> bytes:
    samples = [dict(zip(SYSTEM_FIELDS, row, strict=True)) for row in rows]
    return json.dumps({"job_id": job_id, "samples": samples}, separators=(",", ":"), allow_nan=False).encode()


def system_csv(rows: Sequence[SystemRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SYSTEM_FIELDS)
    writer.writerows(("" if value is None else value for value in row) for row in rows)
    yield buffer.getvalue()
