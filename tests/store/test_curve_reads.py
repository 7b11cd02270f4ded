"""Curves as an API process reads them (`JobCurves`): a whole curve comes from the database once, later reads
fetch only the points new since; requests that come together for a job not yet held read it once."""

import json
import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy.orm import Session, sessionmaker

import app.curves.views
from app.curves.reading import read_all_points, read_metrics_json
from app.curves.views import JobCurves
from store.attempts import claim_next
from store.points import PointRow, add_points, read_points
from tests.conftest import new_job


def running_job_with_points(sessions: sessionmaker[Session], points: list[PointRow]) -> int:
    job_id = new_job(sessions)
    with sessions() as session:
        assert claim_next(sessions, "w") is not None
        add_points(session, job_id, points)
        session.commit()
    return job_id


def add(sessions: sessionmaker[Session], job_id: int, points: list[PointRow]) -> None:
    with sessions() as session:
        add_points(session, job_id, points)
        session.commit()


def spy_on_reads(monkeypatch: pytest.MonkeyPatch, first_read_seconds: float = 0.0) -> list[int | None]:
    """The `since` of every read of points from the database; a read of a whole curve made to last
    `first_read_seconds` (so that reads asked for together overlap)."""
    sinces: list[int | None] = []

    def reading(session: Session, job_id: int, since: int | None = None) -> Sequence[PointRow]:
        sinces.append(since)
        if since is None or since < 0:
            time.sleep(first_read_seconds)
        return read_points(session, job_id, since)

    monkeypatch.setattr(app.curves.views, "read_points", reading)
    return sinces


def steps_of(body: bytes) -> list[tuple[int, str]]:
    return [(p["step"], p["split"]) for p in json.loads(body)["points"]]


def test_a_whole_curve_is_read_once_then_only_what_is_new(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    train = [(step, "train", 1.0 / step, 0.5) for step in range(10, 1001, 10)]
    job_id = running_job_with_points(sessions, train)
    sinces = spy_on_reads(monkeypatch)
    curves = JobCurves(sessions)

    assert steps_of(read_metrics_json(curves, job_id, None, 120_000)) == [(s, "train") for s in range(10, 1001, 10)]
    add(sessions, job_id, [(1010, "train", 0.1, 0.6), (1020, "train", 0.1, 0.6)])
    whole = read_metrics_json(curves, job_id, None, 120_000)
    assert steps_of(whole)[-3:] == [(1000, "train"), (1010, "train"), (1020, "train")]
    assert json.loads(whole)["next_since"] is None
    assert read_all_points(curves, job_id)[-1] == (1020, "train", 0.1, 0.6)
    assert sinces[0] == -1 and all(since is not None and since >= 990 for since in sinces[1:]), sinces

    # the trainer's order at an eval step (every 100 here): the train point, then the test point
    add(sessions, job_id, [(1030, "train", 0.1, 0.6), (1040, "train", 0.1, 0.6), (1100, "train", 0.1, 0.6)])
    assert steps_of(read_metrics_json(curves, job_id, 1020, 120_000)) == [(1030, "train"), (1040, "train"),
                                                                         (1100, "train")]  # fmt: skip
    add(sessions, job_id, [(1100, "test", 0.2, 0.55)])
    # pages of 30 points, cut between steps (a step's train and test points stay on one page), add up to it
    pages, since = [], None
    while True:
        body = json.loads(read_metrics_json(curves, job_id, since, 30))
        pages += [(p["step"], p["split"]) for p in body["points"]]
        if body["next_since"] is None:
            break
        since = body["next_since"]
    assert pages == steps_of(read_metrics_json(curves, job_id, None, 120_000))
    assert pages[-2:] == [(1100, "train"), (1100, "test")]
    assert steps_of(read_metrics_json(curves, job_id, 1000, 120_000, split="test")) == [(1100, "test")]


def test_requests_together_for_a_job_not_yet_held_read_its_curve_once(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = running_job_with_points(sessions, [(step, "train", 1.0, 0.5) for step in range(10, 2001, 10)])
    sinces = spy_on_reads(monkeypatch, first_read_seconds=0.3)
    curves = JobCurves(sessions)
    together = threading.Barrier(4)
    lengths: list[int] = []

    def read() -> None:
        together.wait()
        lengths.append(len(curves.view(job_id).curve))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert lengths == [200] * 4
    assert sinces.count(-1) == 1, sinces  # the others waited for it, then read only what was new
