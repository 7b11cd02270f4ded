"""One sweep driver acts at a time, on SQLite and PostgreSQL: a second one started by mistake does nothing while the
first holds the lease, takes over at once when the first stops, and after the lease's length when it was killed;
a driver whose lease went to another in the middle of a pass creates nothing more."""

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.settings import ApiSettings
from app.sweeps.driver_process import SweepDriver
from store.leases import SWEEP_DRIVER, lease_of
from store.sweeps import create_sweep, sweep_trials
from store.tables import Lease, utcnow
from store.unit_of_work import unit_of_work
from sweeps.spec import SweepSpec

REQUEST = {"base": {"model": "torch_mlp", "hidden_units": [16], "max_steps": 200},
           "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}}, "method": "random", "trials": 8,
           "max_concurrent": 8}  # fmt: skip


def new_sweep(sessions: sessionmaker[Session]) -> int:
    spec = SweepSpec.model_validate(REQUEST)
    with unit_of_work(sessions) as session:
        return create_sweep(session, None, spec.model_dump(mode="json")).id


def trials(sessions: sessionmaker[Session], sweep_id: int) -> int:
    with sessions() as session:
        return len(sweep_trials(session, sweep_id))


def driver(sessions: sessionmaker[Session], tmp_path: Path, database_url: str, name: str, **room: Any) -> SweepDriver:
    settings = ApiSettings(data_dir=tmp_path, database_url=database_url, sweep_lease_seconds=600)
    return SweepDriver(sessions, settings, name, **room)


def expire(sessions: sessionmaker[Session]) -> None:
    """The holder's lease ran out (it was killed, or stalled): moved past its end, no test waits on the clock."""
    with unit_of_work(sessions) as session:
        session.execute(update(Lease).where(Lease.name == SWEEP_DRIVER).values(expires_at=utcnow() - timedelta(1)))


def holder(sessions: sessionmaker[Session]) -> str | None:
    with sessions() as session:
        lease = lease_of(session, SWEEP_DRIVER)
    return None if lease is None or lease.expires_at < utcnow() else lease.holder


def test_a_second_driver_waits_then_takes_over_when_the_first_stops_or_is_killed(
    sessions: sessionmaker[Session], tmp_path: Path, database_url: str
) -> None:
    first, second = (driver(sessions, tmp_path, database_url, name) for name in ("first", "second"))
    assert first.run_once() and holder(sessions) == "first"
    sweep = new_sweep(sessions)
    assert not second.run_once() and trials(sessions, sweep) == 0  # it acts on nothing while the first holds it
    assert first.run_once() and trials(sessions, sweep) == 4  # a pass's bounded share
    first.stop.set()
    first.run()  # a stop: the lease given back
    assert holder(sessions) is None
    assert second.run_once() and trials(sessions, sweep) == 8 and holder(sessions) == "second"
    killed, third = second, driver(sessions, tmp_path, database_url, "third")
    assert not third.run_once()
    expire(sessions)  # the second was killed: its lease runs out
    assert third.run_once() and holder(sessions) == "third"
    assert not killed.run_once() and not killed.holding  # back (a stalled process): it stands aside
    with sessions() as session:
        lease = lease_of(session, SWEEP_DRIVER)
    assert lease is not None and lease.renewals == 4  # the passes of whoever held it, for Prometheus


def test_a_driver_that_loses_its_lease_mid_pass_creates_nothing_more(
    sessions: sessionmaker[Session], tmp_path: Path, database_url: str
) -> None:
    """The lease goes to another driver while the first is between reading a sweep and creating its trial: the
    first's unit of work is undone (PostgreSQL: its renewal finds another holder; SQLite: its read is stale)."""
    takeover = driver(sessions, tmp_path, database_url, "takeover")

    def lose_the_lease(_session: Session, _owner_id: int | None) -> bool:
        if holder(sessions) == "first":
            expire(sessions)
            assert takeover.run_once()  # it takes the lease (and, in its own pass, creates this sweep's trials)
        return True

    first = driver(sessions, tmp_path, database_url, "first", room=lose_the_lease)
    assert first.run_once()  # no sweep yet: it holds the lease
    sweep = new_sweep(sessions)
    first.run_once()
    assert trials(sessions, sweep) == 4  # the takeover's pass alone: the first created none
    assert holder(sessions) == "takeover"
    assert not first.run_once() and not first.holding  # and from its next pass on it stands aside
