"""The curve as /metrics answers it: whole, downsampled to `max_points`, or as CSV."""

import csv
import io
from collections.abc import Iterator, Sequence

import numpy as np
import orjson
from sqlalchemy.orm import Session, sessionmaker

from app.curves.downsample import downsample
from app.curves.views import JobCurves
from store.jobs import find_job
from store.points import PointRow, read_page, read_points

CSV_HEADER = ("step", "split", "loss", "accuracy")


def points_json(job_id: int, status: str, points: Sequence[PointRow], next_since: int | None = None) -> bytes:
    """The MetricsPublic schema as JSON bytes, built straight from the rows (no per-point models), by orjson
    (in C, holding the GIL a fraction of the standard library's time: every poll of a curve comes here).
    Stored losses and accuracies are always finite (the loop stops on a non-finite loss)."""
    body = {
        "job_id": job_id,
        "status": status,
        "points": [{"step": s, "split": sp, "loss": lo, "accuracy": acc} for s, sp, lo, acc in points],
        "next_since": next_since,
    }
    return orjson.dumps(body)


def read_downsampled_json(
    curves: JobCurves, job_id: int, since: int | None, max_points: int, split: str | None = None
) -> bytes:
    """At most `max_points` points (after `since`, of one split when given) that keep the curve's shape:
    first, last, best, extremes. Reads only the points new since the last call for this job. Raises
    JobNotFound."""
    view = curves.view(job_id)
    curve = view.curve
    start = 0 if since is None else int(np.searchsorted(curve.step, since, side="right"))
    window = np.arange(start, len(curve))
    if split is not None:
        window = window[curve.is_test[window] == (split == "test")]
    sub = curve.select(window)
    return points_json(view.id, view.status, sub.rows(downsample(sub, max_points)))


def points_csv(points: Sequence[PointRow]) -> Iterator[str]:
    """Every point as CSV lines, header first; floats with full precision."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for start in range(0, len(points), 10_000):
        writer.writerows((s, sp, repr(lo), repr(acc)) for s, sp, lo, acc in points[start : start + 10_000])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def read_metrics_json(
    sessions: sessionmaker[Session], job_id: int, since: int | None, limit: int, split: str | None = None
) -> bytes:
    """GET /jobs/{id}/metrics as JSON bytes: one page of at most `limit` points. Raises JobNotFound."""
    with sessions() as session:
        job = find_job(session, job_id)
        points, next_since = read_page(session, job_id, since, limit, split)
        return points_json(job.id, job.status, points, next_since)


def read_all_points(sessions: sessionmaker[Session], job_id: int, split: str | None = None) -> Sequence[PointRow]:
    """Every point of the job (of one split, when given), in step order. Raises JobNotFound."""
    with sessions() as session:
        find_job(session, job_id)
        return read_points(session, job_id, split=split)
