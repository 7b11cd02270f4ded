"""`GET /executors` (issue 46) on SQLite and PostgreSQL: each executor with where it runs, whether it is alive, and
the jobs it runs; one unseen past EXECUTOR_ALIVE_SECONDS is listed dead, one unseen for a week is forgotten."""

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import ApiSettings
from models.kinds.common import SPEC_VERSION
from store.attempts import claim_next
from store.executors import ExecutorAbout, register_executor
from store.tables import Executor, utcnow
from store.unit_of_work import unit_of_work
from tests.conftest import local_client, new_job


def test_executors_say_where_they_run_what_they_run_and_whether_they_are_alive(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session]
) -> None:
    started = utcnow()
    with unit_of_work(sessions) as session:
        for name, pid in (("busy", 11), ("killed", 12), ("long-gone", 13)):
            about = ExecutorAbout("worker", "box-1", pid, "0.1.0", started)
            register_executor(session, name, 0, 2, SPEC_VERSION, {"numpy_mlp": ""}, about)
        session.execute(
            update(Executor).where(Executor.name == "killed").values(seen_at=utcnow() - timedelta(minutes=5))
        )
        session.execute(
            update(Executor).where(Executor.name == "long-gone").values(seen_at=utcnow() - timedelta(days=8))
        )
    job_id = new_job(sessions)
    claimed = claim_next(sessions, "busy", 0, 2, SPEC_VERSION)
    assert claimed is not None and claimed.job_id == job_id
    with unit_of_work(sessions) as session:  # a heartbeat forgets the executors unseen for a week
        register_executor(
            session,
            "busy",
            0,
            2,
            SPEC_VERSION,
            {"numpy_mlp": ""},
            ExecutorAbout("worker", "box-1", 11, "0.1.0", started),
        )
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, executor_alive_seconds=60)
    with local_client(create_app(settings)) as client:
        answer = client.get("/executors").json()
    listed = {executor["name"]: executor for executor in answer["data"]}
    assert set(listed) == {"busy", "killed"} and answer["alive"] == 1
    assert listed["busy"]["alive"] and listed["busy"]["running"] == [job_id] and listed["busy"]["pid"] == 11
    assert not listed["killed"]["alive"] and listed["killed"]["running"] == []
    assert (listed["busy"]["host"], listed["busy"]["role"], listed["busy"]["kinds"]) == (
        "box-1",
        "worker",
        {"numpy_mlp": ""},
    )
