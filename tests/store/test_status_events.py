"""A job's event stream tells every status change, read from the outbox (`job_events`): a job handed back and
claimed again between two reads of the job shows both moves, in order."""

import asyncio
import json
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.curves.events import JobEvents
from app.curves.views import JobCurves
from store.attempts import Attempt, cancel_attempt, claim_next, hand_back
from store.points import add_points
from store.unit_of_work import unit_of_work
from tests.conftest import new_job


def claim(sessions: sessionmaker[Session], worker: str) -> Attempt:
    attempt = claim_next(sessions, worker)
    assert attempt is not None
    return attempt


def test_a_stream_tells_each_status_change_even_between_two_reads(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    first = claim(sessions, "a")
    with sessions() as session:
        add_points(session, job_id, [(10, "train", 1.0, 0.5)])
        session.commit()
    events = JobEvents(JobCurves(sessions), interval_seconds=0.5)
    moved = threading.Event()

    def move_between_two_reads() -> None:  # handed back, claimed again, then cancelled: three moves
        with unit_of_work(sessions) as session:
            assert hand_back(session, first)
        again = claim(sessions, "b")
        moved.set()
        with unit_of_work(sessions) as session:
            assert cancel_attempt(session, again, {}, 10)

    async def follow() -> list[tuple[str, dict[str, Any]]]:
        told: list[tuple[str, dict[str, Any]]] = []
        async for event in events.stream(job_id, None):
            assert isinstance(event, dict) or b"event: points" in event
            if isinstance(event, dict):
                told.append((event["event"], json.loads(event["data"])))
                if len(told) == 1:  # the first read told "running": the moves come before the next read
                    await asyncio.to_thread(move_between_two_reads)
        return told

    told = asyncio.run(asyncio.wait_for(follow(), timeout=30))
    assert moved.is_set()
    statuses = [(data["status"], data["attempts"]) for name, data in told if name == "status"]
    assert statuses == [("running", 1), ("queued", 1), ("running", 2), ("cancelled", 2)]
    assert told[-1][0] == "end" and told[-1][1]["status"] == "cancelled"
