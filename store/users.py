"""Users, their API tokens and the audit log.

A token is 32 random bytes (256 bits) in URL-safe base64 after a `cjt_` prefix; only its SHA-256 is stored.
A lookup finds the row by that hash (an index), then compares the hashes in constant time.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, ScalarSelect, Select, bindparam, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.errors import StoreError
from store.tables import AuditEntry, Job, Role, Sweep, Token, User, utcnow

TOKEN_PREFIX = "cjt_"


class UserExists(StoreError):
    """A user with this name exists already."""


class UserNotFound(StoreError):
    """No such user."""


class TokenNotFound(StoreError):
    """No such token among the user's."""


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


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
    token = _add_token(session, user.id, "first token")
    if first_admin:
        session.execute(update(Job).where(Job.owner_id.is_(None)).values(owner_id=user.id))
        session.execute(update(Sweep).where(Sweep.owner_id.is_(None)).values(owner_id=user.id))
    return user, token


def find_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} not found")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


def set_quotas(session: Session, user_id: int, quotas: dict[str, Any]) -> User:
    """Replace the user's quota overrides (None for a quota: the default again)."""
    user = find_user(session, user_id)
    user.quotas = {key: value for key, value in quotas.items() if value is not None} or None
    session.flush()
    return user


def update_user(session: Session, user_id: int, role: Role | None = None, disabled: bool | None = None) -> User:
    """Change the user's role, or disable them (their tokens are refused from now on) or enable them again;
    what is None stays. Raises UserNotFound."""
    user = find_user(session, user_id)
    if role is not None:
        user.role = role.value
    if disabled is not None and disabled != (user.disabled_at is not None):
        user.disabled_at = utcnow() if disabled else None
    session.flush()
    return user


def _add_token(session: Session, user_id: int, label: str | None, expires_at: datetime | None = None) -> str:
    token = new_token()
    session.add(Token(user_id=user_id, sha256=token_sha256(token), label=label, created_at=utcnow(),
                      expires_at=expires_at))  # fmt: skip
    session.flush()
    return token


def create_token(
    session: Session, user_id: int, label: str | None, expires_at: datetime | None = None
) -> tuple[Token, str]:
    """A new token for the user (the only time it is seen), valid until `expires_at` (None: until revoked);
    raises UserNotFound."""
    find_user(session, user_id)
    token = _add_token(session, user_id, label, expires_at)
    row = session.scalars(select(Token).where(Token.sha256 == token_sha256(token))).one()
    return row, token


def list_tokens(session: Session, user_id: int) -> list[Token]:
    return list(session.scalars(select(Token).where(Token.user_id == user_id).order_by(Token.id)))


def revoke_token(session: Session, user_id: int, token_id: int, whose: str = "yours") -> Token:
    """Revoke one of the user's tokens (again: no change). Raises TokenNotFound."""
    token = session.get(Token, token_id)
    if token is None or token.user_id != user_id:
        raise TokenNotFound(f"token {token_id} not found among {whose}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


@dataclass(frozen=True)
class TokenOwner:
    user_id: int
    name: str
    role: Role
    quotas: dict[str, Any]  # an admin's overrides of the default quotas


def user_of_token(session: Session, token: str) -> TokenOwner | None:
    """The user a live token belongs to (not revoked, not expired, its user not disabled), or None."""
    digest = token_sha256(token)
    live = Token.revoked_at.is_(None) & (Token.expires_at.is_(None) | (Token.expires_at > utcnow()))
    row = session.execute(
        select(Token.sha256, User.id, User.name, User.role, User.quotas)
        .join(User, User.id == Token.user_id)
        .where(Token.sha256 == digest, live, User.disabled_at.is_(None))
    ).first()
    if row is None or not secrets.compare_digest(row.sha256, digest):
        return None
    return TokenOwner(row.id, row.name, Role(row.role), row.quotas or {})


def record_audit(
    session: Session,
    user_id: int | None,
    actor: str,
    action: str,
    target: str,
    client: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One entry of the audit log, landing with the caller's change (in its transaction)."""
    session.add(AuditEntry(at=utcnow(), user_id=user_id, actor=actor, action=action, target=target, client=client,
                           detail=detail))  # fmt: skip


def role_and_quotas(session: Session, user_id: int) -> tuple[str, dict[str, Any]] | None:
    """The user's role and quota overrides, or None when there is no such user."""
    row = session.execute(select(User.role, User.quotas).where(User.id == user_id)).first()
    return None if row is None else (row.role, row.quotas or {})


def running_cap_of(role: str, quotas: dict[str, Any] | None, default: int | None) -> int | None:
    """How many jobs a user may have running at once: their own `running_jobs` quota, else `default`; None (no
    cap) for admins."""
    return None if role == Role.admin.value else (quotas or {}).get("running_jobs", default)


def hold_user(session: Session, user_id: int) -> None:
    """Hold the user's row until the transaction ends (a no-op UPDATE: a row lock on PostgreSQL, the write lock
    on SQLite), so that two submissions of one user are counted against the quotas one after the other."""
    session.execute(update(User).where(User.id == user_id).values(name=User.name))


def audit_page(session: Session, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
    """Entries newest first, with their total count."""
    count = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(entries), count


def owner_of_job(session: Session, job_id: int) -> tuple[bool, int | None]:
    """(whether the job exists, its owner)."""
    row = session.execute(select(Job.owner_id).where(Job.id == job_id)).first()
    return (row is not None, row.owner_id if row is not None else None)


def owner_of_sweep(session: Session, sweep_id: int) -> tuple[bool, int | None]:
    row = session.execute(select(Sweep.owner_id).where(Sweep.id == sweep_id)).first()
    return (row is not None, row.owner_id if row is not None else None)


@dataclass(frozen=True)
class Counts:
    queued: int
    running: int
    submitted_last_minute: int
    oldest_in_last_minute: datetime | None


@dataclass(frozen=True)
class Usage(Counts):
    cpu_hours: float
    gpu_hours: float


def _counts_statement() -> Select[int, int, int, datetime]:
    """The counts' statement, built once (its compiled form and cache key are then reused): each count an index
    range ((owner_id, status), (owner_id, created_at)); queued jobs and submissions counted up to `:up_to`."""
    mine = Job.owner_id == bindparam("user_id")
    recent = Job.created_at > bindparam("minute_start")

    def count(where: ColumnElement[bool], bounded: bool) -> ScalarSelect[int]:
        rows = select(Job.id).where(mine, where)
        rows = rows.limit(bindparam("up_to", type_=Integer)) if bounded else rows
        return select(func.count()).select_from(rows.subquery()).scalar_subquery()

    return select(
        count(Job.status == "queued", True),
        count(Job.status == "running", False),
        count(recent, True),
        select(func.min(Job.created_at)).where(mine, recent).scalar_subquery(),
    )


COUNTS = _counts_statement()


def counts_of(
    session: Session, user_id: int, minute_start: datetime, hold: bool = False, count_up_to: int | None = None
) -> Counts:
    """The user's jobs queued and running now, and submitted since `minute_start`: one query. With `count_up_to`,
    the queued jobs and the submissions are counted up to that many (a quota check needs no more: its cost then
    stays the same however many jobs the user has).

    With `hold`, in a transaction that has already written (the submitted jobs), submissions of one user are
    counted one after the other: SQLite's writer lock is held from that write; on PostgreSQL the user's row is
    locked first, in a statement of its own, so that the counts' statement starts after the other submission's
    commit and sees it (a statement waiting on a row lock keeps the snapshot it started with)."""
    if hold and session.get_bind().dialect.name == "postgresql":
        hold_user(session, user_id)
    up_to = count_up_to if count_up_to is not None else 2**31 - 1
    queued, running, submitted, oldest = session.execute(
        COUNTS, {"user_id": user_id, "minute_start": minute_start, "up_to": up_to}
    ).one()
    return Counts(queued, running, submitted, oldest)


def hours_of(session: Session, user_id: int, window_start: datetime) -> tuple[float, float]:
    """CPU- and GPU-hours of the user's running time since `window_start`: a job's cpus and gpus times its time
    running within the window, over their jobs running now or ended in the window."""
    now = utcnow()
    cpu = gpu = 0.0
    ran_in_window = Job.started_at.is_not(None) & ((Job.status == "running") | (Job.finished_at > window_start))
    for started, finished, cpus, gpus in session.execute(
        select(Job.started_at, Job.finished_at, Job.cpus, Job.gpus).where(Job.owner_id == user_id, ran_in_window)
    ):
        if started is None:  # not so by the query; said for the type checker
            continue
        hours = max(0.0, ((finished or now) - max(started, window_start)).total_seconds() / 3600)
        cpu, gpu = cpu + hours * cpus, gpu + hours * gpus
    return cpu, gpu
