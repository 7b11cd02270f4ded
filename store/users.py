"""Users: created (with their first token), found, listed, their role, quotas and access changed, removed; and who
owns a job or a sweep."""

from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import JobFinished, UserExists, UserNotFound, UserRemoved
from store.jobs import request_cancel
from store.sweeps import SweepFinished, cancel_sweep
from store.tables import Job, JobStatus, Role, Sweep, SweepStatus, Token, User, utcnow
from store.tokens import add_token


def any_users(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(User.id.is_not(None)))))


def create_user(session: Session, name: str, role: Role) -> tuple[User, str]:
    """A new user and their first token (the only time it is seen). The first admin becomes the
    owner of the jobs and sweeps stored before there were users. Raises UserExists."""
    first_admin = role == Role.admin and not session.scalar(select(exists().where(User.role == Role.admin.value)))
    user = User(name=name, role=role.value, created_at=utcnow())
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # the caller's transaction is over
        raise UserExists(f"a user named {name!r} exists already") from None
    token = add_token(session, user.id, "first token")
    if first_admin:
        session.execute(update(Job).where(Job.owner_id.is_(None)).values(owner_id=user.id))
        session.execute(update(Sweep).where(Sweep.owner_id.is_(None)).values(owner_id=user.id))
    return user, token


def find_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} not found")
    return user


def live_user(session: Session, user_id: int) -> User:
    """The user, unless removed (raises UserRemoved) or unknown (UserNotFound)."""
    user = find_user(session, user_id)
    if user.removed_at is not None:
        raise UserRemoved(f"user {user_id} ({user.name}) was removed: their runs stay, nothing of theirs changes")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def set_quotas(session: Session, user_id: int, quotas: dict[str, Any]) -> User:
    """Replace the user's quota overrides (None for a quota: the default again)."""
    user = live_user(session, user_id)
    user.quotas = {key: value for key, value in quotas.items() if value is not None} or None
    session.flush()
    return user


def update_user(session: Session, user_id: int, role: Role | None = None, disabled: bool | None = None) -> User:
    """Change the user's role, or disable them (their tokens are refused from now on) or enable them again;
    what is None stays. Raises UserNotFound or UserRemoved."""
    user = live_user(session, user_id)
    if role is not None:
        user.role = role.value
    if disabled is not None and disabled != (user.disabled_at is not None):
        user.disabled_at = utcnow() if disabled else None
    session.flush()
    return user


def removed_name(name: str, user_id: int) -> str:
    """What a removed user is called from then on: no user can be given it (a name has no space or bracket), and
    their old name is free again."""
    return f"{name[: 100 - 20]} (removed #{user_id})"


def remove_user(session: Session, user_id: int) -> User:
    """Remove the user and keep their runs: renamed `NAME (removed #ID)` (the name is free again), disabled, every
    token revoked, their running sweeps and queued or running jobs cancelled (what those trained stays, as their
    finished runs do, still theirs). Raises UserNotFound or UserRemoved."""
    user = live_user(session, user_id)
    now = utcnow()
    user.name, user.removed_at = removed_name(user.name, user_id), now
    user.disabled_at = user.disabled_at or now
    session.execute(update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None)).values(revoked_at=now))
    session.flush()
    for sweep_id in session.scalars(
        select(Sweep.id).where(Sweep.owner_id == user_id, Sweep.status == SweepStatus.running.value)
    ).all():
        try:
            cancel_sweep(session, sweep_id)
        except SweepFinished:  # it ended meanwhile
            pass
    active = [JobStatus.queued.value, JobStatus.running.value]
    for job_id in session.scalars(select(Job.id).where(Job.owner_id == user_id, Job.status.in_(active))).all():
        try:
            request_cancel(session, job_id)
        except JobFinished:  # it ended meanwhile
            pass
    return user


def owner_of_job(session: Session, job_id: int) -> tuple[bool, int | None]:
    """(whether the job exists, its owner)."""
    row = session.execute(select(Job.owner_id).where(Job.id == job_id)).first()
    return (row is not None, row.owner_id if row is not None else None)


def owner_of_sweep(session: Session, sweep_id: int) -> tuple[bool, int | None]:
    row = session.execute(select(Sweep.owner_id).where(Sweep.id == sweep_id)).first()
    return (row is not None, row.owner_id if row is not None else None)
