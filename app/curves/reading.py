"""The curve as /metrics answers it: whole, downsampled to `max_points`, or as CSV."""

from collections.abc import Iterator, Sequence

import numpy as np
import orjson

from app.curves.downsample import Curve, downsample
from app.curves.views import JobCurves
from app.http.csv_body import csv_chunks, spreadsheet_safe
from store.points import PointRow

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


def _window(curve: Curve, since: int | None, split: str | None) -> np.ndarray:
    """Indices of the curve's points after `since` (of one split, when given), in step order."""
    start = 0 if since is None else int(np.searchsorted(curve.step, since, side="right"))
    window = np.arange(start, len(curve))
    if split is not None:
        window = window[curve.is_test[window] == (split == "test")]
    return window


def read_downsampled_json(
    curves: JobCurves, job_id: int, since: int | None, max_points: int, split: str | None = None
) -> bytes:
    """At most `max_points` points (after `since`, of one split when given) that keep the curve's shape:
    first, last, best, extremes. Reads only the points new since the last call for this job. Raises
    JobNotFound."""
    view = curves.view(job_id)
    sub = view.curve.select(_window(view.curve, since, split))
    return points_json(view.id, view.status, sub.rows(downsample(sub, max_points)))


def points_csv(points: Sequence[PointRow]) -> Iterator[str]:
    """Every point as CSV lines, header first; floats with full precision."""
    return csv_chunks(CSV_HEADER, ((s, sp, repr(lo), repr(acc)) for s, sp, lo, acc in points))


def compared_csv(labelled: Sequence[tuple[int, str, Sequence[PointRow]]]) -> Iterator[str]:
    """Several jobs' points as one CSV (`job_id,name,step,split,loss,accuracy`): a name with commas, quotes or
    line breaks stays one cell, and one that starts like a formula is neutralised."""
    named = ((job_id, spreadsheet_safe(name), points) for job_id, name, points in labelled)  # once a job
    rows = ((job_id, safe, s, sp, repr(lo), repr(acc)) for job_id, safe, points in named for s, sp, lo, acc in points)
    return csv_chunks(("job_id", "name", *CSV_HEADER), rows)


def read_metrics_json(curves: JobCurves, job_id: int, since: int | None, limit: int, split: str | None = None) -> bytes:
    """GET /jobs/{id}/metrics as JSON bytes: one page of at most `limit` (>= 2) points, cut between steps, with
    the `since` of the next page (None after the last). From the curve this process holds (`JobCurves`: only the
    points new since its last read of the job come from the database; a whole page of a 100,000-point curve
    read from SQL each time took 390 ms at p50, 82 ms so: bench/watching.py). Raises JobNotFound."""
    view = curves.view(job_id)
    window = _window(view.curve, since, split)
    if len(window) <= limit:
        return points_json(view.id, view.status, view.curve.rows(window))
    last_whole_step = int(view.curve.step[window[limit]]) - 1  # the step the (limit+1)-th point starts: left whole
    page = window[:limit][view.curve.step[window[:limit]] <= last_whole_step]
    return points_json(view.id, view.status, view.curve.rows(page), last_whole_step)


def read_all_points(curves: JobCurves, job_id: int, split: str | None = None) -> list[PointRow]:
    """Every point of the job (of one split, when given), in step order, from the curve this process holds.
    Raises JobNotFound."""
    view = curves.view(job_id)
    return view.curve.rows(_window(view.curve, None, split))
