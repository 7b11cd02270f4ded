"""A reproduction's verdict: is its curve the original's, bit for bit; if not, by how much each metric differs,
and what differed in the two runs' records (versions, CPU, precision, data)."""

from typing import Any

from sqlalchemy.orm import Session

from app.jobs.schemas import ReproductionPublic, full_record
from store.jobs import find_job, job_if_any
from store.points import read_points
from store.reproductions import NotAReproduction, keep_verdict
from store.tables import Job, JobStatus
from store.transitions import FINISHED


def _flat(record: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(record, dict):
        return {k: v for key, value in record.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): record}


def _record_differences(original: Job, copy: Job) -> dict[str, list[Any]]:
    first, second = _flat(full_record(original) or {}), _flat(full_record(copy) or {})
    return {key: [first.get(key), second.get(key)] for key in sorted(first.keys() | second.keys())
            if first.get(key) != second.get(key)}  # fmt: skip


def _curve_differences(session: Session, original: int, copy: int) -> tuple[bool, dict[str, float], int]:
    """(identical, the largest absolute difference per split and metric, points in one curve only)."""
    first = {(split, step): (loss, acc) for step, split, loss, acc in read_points(session, original)}
    second = {(split, step): (loss, acc) for step, split, loss, acc in read_points(session, copy)}
    largest: dict[str, float] = {}
    for key in first.keys() & second.keys():
        for index, metric in enumerate(("loss", "accuracy")):
            name = f"{key[0]}_{metric}"
            largest[name] = max(largest.get(name, 0.0), abs(first[key][index] - second[key][index]))
    unmatched = len(first.keys() ^ second.keys())
    identical = unmatched == 0 and all(first[key] == second[key] for key in first)
    return identical, largest, unmatched


def verdict(session: Session, job_id: int) -> ReproductionPublic:
    """The verdict of reproduction `job_id` (kept once both jobs have ended). Raises JobNotFound, NotAReproduction."""
    copy = find_job(session, job_id)
    if copy.reproduces is None:
        raise NotAReproduction(f"job {job_id} reproduces no job: POST /jobs/{{id}}/reproduce makes a reproduction")
    if copy.reproduction is not None:
        return ReproductionPublic(**copy.reproduction)
    original = job_if_any(session, copy.reproduces)
    if original is None:
        return ReproductionPublic(of=copy.reproduces, status="original deleted")
    if JobStatus(copy.status) not in FINISHED:
        return ReproductionPublic(of=original.id, status="pending")
    identical, largest, unmatched = _curve_differences(session, original.id, copy.id)
    found = ReproductionPublic(
        of=original.id,
        status="identical" if identical else "different",
        largest_differences=largest,
        points_in_one_curve_only=unmatched,
        record_differences=_record_differences(original, copy),
    )
    keep_verdict(session, copy.id, found.model_dump(mode="json"))
    return found
