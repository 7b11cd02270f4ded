"""Leases: a job that one process at a time may do (the sweep driver) is done by whoever holds its lease, and
only while it holds it. The holder renews it in every unit of work that acts under it, as that unit's last
statement before it commits: when another process holds it by then, the renewal says so and the unit is undone.
The renewal reads the latest row (on PostgreSQL it locks it until the unit commits, so a take-over at the same time
waits, then finds the lease renewed; SQLite writes one transaction at a time). A lease not renewed for
its length (its holder killed, or stopped without giving it back) goes to the next process that asks. Expiry is
judged by the asking process's clock (machines that share a store keep theirs in step, as NTP does)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.tables import Lease, utcnow
from store.upsert import insert_into

SWEEP_DRIVER = "sweep-driver"  # the lease the sweep driver works under (app.sweeps.driver_process)


class LeaseLost(Exception):
    """Another process holds the lease: what was to be done under it was not."""


@dataclass(frozen=True)
class LeaseView:
    holder: str
    expires_at: datetime
    renewals: int


def hold_lease(session: Session, name: str, holder: str, seconds: float, count: bool = False) -> bool:
    """Take the lease `name` for `holder` when nobody holds it or it has expired, or renew it when `holder` has it:
    whether `holder` holds it now (for `seconds` from now). One statement, so two processes asking at once get one
    yes between them. `count`: one more renewal counted (a pass of the holder's work, say)."""
    now = utcnow()
    expires_at = now + timedelta(seconds=seconds)
    statement = (
        insert_into(session, Lease)
        .values(name=name, holder=holder, expires_at=expires_at, renewals=int(count))
        .on_conflict_do_update(
            index_elements=[Lease.name],
            set_={"holder": holder, "expires_at": expires_at, "renewals": Lease.renewals + int(count)},
            where=(Lease.holder == holder) | (Lease.expires_at < now),
        )
        .returning(Lease.holder)
    )
    return session.execute(statement).scalar_one_or_none() == holder


def release_lease(session: Session, name: str, holder: str) -> None:
    """Give the lease back (only the holder can): the next process that asks takes it at once (the row stays, with
    its count of renewals)."""
    session.execute(
        update(Lease)
        .where(Lease.name == name, Lease.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )


def lease_of(session: Session, name: str) -> LeaseView | None:
    lease = session.scalar(select(Lease).where(Lease.name == name))
    return None if lease is None else LeaseView(lease.holder, lease.expires_at, lease.renewals)
