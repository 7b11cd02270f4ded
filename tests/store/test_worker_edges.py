"""The worker at the edges of a job's life, in process (no server): a job deleted the moment it ended, a
training process that ends on its own just as the worker gives up waiting for it, and a torch job claimed
before the worker looked for one (torch is still imported before the fork)."""

import multiprocessing
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from specs import parse_job_spec
from store.attempts import Attempt, claim_next, jobs_by_id, succeed_attempt
from store.jobs import create_job, delete_job
from store.logs import read_log
from store.unit_of_work import transact
from workers.executor import Watched
from workers.output import JobOutput
from workers.settings import WorkerSettings
from workers.worker import Worker

CONTEXT = multiprocessing.get_context("fork")


def worker_for(engine: Engine, tmp_path: Path, **settings: float) -> Worker:
    url = engine.url.render_as_string(hide_password=False)
    return Worker(WorkerSettings.model_validate({"database_url": url, "data_dir": tmp_path, **settings}), "edge")


def running_attempt(sessions: sessionmaker[Session]) -> Attempt:
    with sessions() as session:
        create_job(session, parse_job_spec({"model": "torch_mlp"}))
        session.commit()
        attempt = claim_next(sessions, "edge")
    assert attempt is not None
    return attempt


def _ended(code: int) -> multiprocessing.process.BaseProcess:
    process = CONTEXT.Process(target=sys.exit, args=(code,))
    process.start()
    process.join()
    return process


def test_a_job_deleted_right_after_it_succeeded_is_left_alone(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """The child recorded success, the user deleted the job at once, then the worker's pass found the child ended,
    copied its last output and settled: that once died on the logs' foreign key (and stayed down under compose)."""
    attempt = running_attempt(sessions)
    worker = worker_for(engine, tmp_path)
    placement = worker.placement
    placement.attempt, placement.child = attempt, _ended(0)
    placement.out = JobOutput(tmp_path / "out.log")
    placement.out.path.write_text("step 1400/1400: test loss 1.5 accuracy 0.49\n")
    worker.executor.placed[attempt] = Watched()
    assert transact(
        sessions, lambda session: succeed_attempt(session, attempt, {"test_accuracy": 0.49}, 1400, b"model")
    )
    with sessions() as session:
        delete_job(session, attempt.job_id)
        session.commit()
    try:
        worker.executor.run_once(claim=False)  # nothing to copy into, nothing to settle: no error
        with sessions() as session:
            assert read_log(session, attempt.job_id, None) is None
        assert not worker.executor.placed and placement.ready()  # it takes the next job
    finally:
        worker.engine.dispose()


def _slow_to_stop(seconds: float) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as a child stuck in a locked database would
    time.sleep(seconds)


def test_the_stop_deadline_passing_as_the_child_ends_on_its_own_is_no_crash(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """SIGTERM to the worker, the child slow to stop: past `graceful_stop_seconds` it is killed. When the
    child ended (and was reaped) just before that kill, the worker once died of ProcessLookupError."""
    worker = worker_for(engine, tmp_path, graceful_stop_seconds=0.05, heartbeat_seconds=3600)
    placement = worker.placement
    worker.stopping.set()

    def stop_as_the_worker_does() -> None:
        assert placement.child is not None
        while placement.child.is_alive():  # the worker's loop while it stops: wait, then kill when overdue
            worker._wait(1.0)
            placement.kill_when_overdue(time.monotonic())

    try:
        placement.child = CONTEXT.Process(target=_slow_to_stop, args=(0.7,))  # ends between two 0.5 s waits
        placement.child.start()
        started = time.monotonic()
        stop_as_the_worker_does()
        assert placement.child.exitcode == 0 and time.monotonic() - started < 5  # it ended by itself, not killed
        placement.child, placement.stop_sent_at = CONTEXT.Process(target=_slow_to_stop, args=(60,)), None
        placement.child.start()  # one that never stops: killed
        stop_as_the_worker_does()
        assert placement.child.exitcode == -signal.SIGKILL
    finally:
        worker.engine.dispose()


def test_a_torch_job_claimed_before_the_workers_preload_look_is_preloaded_before_its_fork(
    engine: Engine, sessions: sessionmaker[Session], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker preloads torch when it sees a torch job waiting; one submitted between that look and the claim
    was forked without it (its child imported torch itself: seen once as a failed `test_e2e` under load)."""
    happened: list[str] = []
    monkeypatch.setattr("workers.worker.preload_torch", lambda: happened.append("preload"))

    class Forked:
        def __init__(self, **_: object) -> None:
            pass

        def start(self) -> None:
            happened.append("fork")

    monkeypatch.setattr("workers.worker.CONTEXT.Process", Forked)
    attempt = running_attempt(sessions)  # a torch job, claimed with no look at the queue before
    worker = worker_for(engine, tmp_path)
    with sessions() as session:
        job = jobs_by_id(session, [attempt.job_id])[attempt.job_id]
        worker.placement.place(job, attempt)
        worker.placement.place(job, attempt)  # the second torch job: torch is there already
    assert happened == ["preload", "fork", "fork"]
