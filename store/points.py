"""Metric points: written in batches by the training job, read by pollers."""

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from store.outbox import EVALUATED, record_event
from store.tables import MetricPoint

PointRow = tuple[int, str, float, float]  # step, split, loss, accuracy


def add_points(session: Session, job_id: int, points: Iterable[PointRow]) -> None:
    """Insert points in one statement; when they hold evaluations (test points), one `job.evaluated` event with
    their steps too, in the same transaction (the sweep driver reads it). No commit."""
    rows = [{"job_id": job_id, "step": s, "split": sp, "loss": lo, "accuracy": acc} for s, sp, lo, acc in points]
    if rows:
        session.execute(insert(MetricPoint), rows)
    evaluated = [row["step"] for row in rows if row["split"] == "test"]
    if evaluated:
        record_event(session, EVALUATED, {"job_id": job_id, "steps": evaluated}, job_id=job_id)


def read_points(session: Session, job_id: int, since: int | None = None) -> Sequence[PointRow]:
    """The job's points as (step, split, loss, accuracy) rows in step order (train before test at the
    same step), after `since` when given. Plain rows, not ORM objects: the API reads a job's curve through
    `app.curves.views.JobCurves`, which asks only for the points after those it holds."""
    query = select(MetricPoint.step, MetricPoint.split, MetricPoint.loss, MetricPoint.accuracy).where(
        MetricPoint.job_id == job_id
    )
    if since is not None:
        query = query.where(MetricPoint.step > since)
    query = query.order_by(MetricPoint.step, MetricPoint.split.desc())
    return [(step, split, loss, accuracy) for step, split, loss, accuracy in session.execute(query)]


def delete_points_after(session: Session, job_id: int, step: int) -> None:
    """Drop points a restarted job will log again. No commit."""
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id, MetricPoint.step > step))


def latest_test_accuracy(session: Session, job_ids: list[int]) -> dict[int, float]:
    """Each job's newest test accuracy, for jobs that have one."""
    if not job_ids:
        return {}
    newest = (
        select(MetricPoint.job_id, func.max(MetricPoint.step).label("step"))
        .where(MetricPoint.job_id.in_(job_ids), MetricPoint.split == "test")
        .group_by(MetricPoint.job_id)
        .subquery()
    )
    rows = session.execute(
        select(MetricPoint.job_id, MetricPoint.accuracy)
        .join(
            newest,
            (MetricPoint.job_id == newest.c.job_id) & (MetricPoint.step == newest.c.step),
        )
        .where(MetricPoint.split == "test")
    )
    return {job_id: accuracy for job_id, accuracy in rows}
