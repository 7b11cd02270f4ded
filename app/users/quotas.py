"""Per-user quotas, checked when a user submits: queued jobs, submissions a minute, CPU- and GPU-hours in 7 days;
and priorities above ADMIN_PRIORITY_ABOVE for admins only. Running jobs are capped where executors claim
(`store.attempts.claim_next`): a job past its owner's cap waits queued. Admins, the API_KEY and the single-user
mode have no quotas. Each refusal is a 429 that names the quota, the usage and when it frees."""

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.plumbing.auth import Principal
from app.plumbing.refusals import Forbidden, OverQuota
from app.settings import ApiSettings
from store.tables import Role, User, utcnow
from store.users import Usage, hold_user, usage_of

WINDOW = timedelta(days=7)
QUOTA_NAMES = ("running_jobs", "queued_jobs", "submissions_per_minute", "cpu_hours", "gpu_hours")


@dataclass(frozen=True)
class Quotas:
    running_jobs: int  # enforced where jobs are claimed (store.attempts.claim_next): more wait queued
    queued_jobs: int
    submissions_per_minute: int
    cpu_hours: float
    gpu_hours: float


def quotas_of(settings: ApiSettings, overrides: dict[str, Any]) -> Quotas:
    """The settings' defaults, with the user's overrides (an admin's `PUT /users/{id}/quotas`)."""
    defaults = {name: getattr(settings, f"quota_{name}") for name in QUOTA_NAMES}
    return Quotas(**{**defaults, **{k: v for k, v in overrides.items() if k in defaults}})


def usage_now(session: Session, user_id: int, hold: bool = False) -> Usage:
    now = utcnow()
    return usage_of(session, user_id, now - WINDOW, now - timedelta(minutes=1), hold)


def quotas_apply(principal: Principal) -> bool:
    return principal.user_id is not None and not principal.is_admin


def check_submission(
    session: Session,
    settings: ApiSettings,
    principal: Principal,
    priority: int,
    gpus: float,
    jobs: int = 1,
    inserted: bool = False,
) -> None:
    """Raise Forbidden or OverQuota when `principal` may not queue `jobs` more jobs of this priority and GPUs;
    `inserted`: the caller has already added (flushed) those jobs in its transaction.

    The user's row stays held until the caller's transaction ends, so that two submissions at once are counted one
    after the other and cannot both take the last place: the caller inserts the jobs in the same transaction, best
    before the check (`inserted`): then it takes one query.
    """
    if principal.user_id is None or not quotas_apply(principal):
        return
    if priority > settings.admin_priority_above:
        raise Forbidden(f"priority {priority}: above {settings.admin_priority_above} is for admins")
    if inserted:
        counted = usage_now(session, principal.user_id, hold=True)
        usage = replace(
            counted, queued=counted.queued - jobs, submitted_last_minute=counted.submitted_last_minute - jobs
        )
    else:
        hold_user(session, principal.user_id)
        usage = usage_now(session, principal.user_id)
    quotas = quotas_of(settings, principal.quotas)
    if usage.queued + jobs > quotas.queued_jobs:
        raise OverQuota(f"quota queued_jobs: {usage.queued} of {quotas.queued_jobs} queued; one frees when one of your "
                        "queued jobs starts or is cancelled")  # fmt: skip
    if usage.submitted_last_minute + jobs > quotas.submissions_per_minute:
        oldest = usage.oldest_in_last_minute or utcnow()
        wait = max(1, int(60 - (utcnow() - oldest).total_seconds()) + 1)
        used = f"{usage.submitted_last_minute} of {quotas.submissions_per_minute}"
        raise OverQuota(f"quota submissions_per_minute: {used} in the last 60 s; again in {wait} s", retry_after=wait)
    if usage.cpu_hours >= quotas.cpu_hours:
        raise OverQuota(f"quota cpu_hours: {usage.cpu_hours:.1f} of {quotas.cpu_hours:g} CPU-hours used in the last 7 "
                        "days; it frees as your older running time leaves the 7-day window")  # fmt: skip
    if gpus > 0 and usage.gpu_hours >= quotas.gpu_hours:
        raise OverQuota(f"quota gpu_hours: {usage.gpu_hours:.1f} of {quotas.gpu_hours:g} GPU-hours used in the last 7 "
                        "days; it frees as your older running time leaves the 7-day window")  # fmt: skip


def room_in_queue(settings: ApiSettings, session: Session, owner_id: int | None) -> bool:
    """Whether a sweep of `owner_id` may queue one more trial: within their queued_jobs quota and with CPU-hours
    left (admins and nobody's sweeps: always; a sweep's trials are not counted as submissions a minute)."""
    if owner_id is None:
        return True
    owner = session.execute(select(User.role, User.quotas).where(User.id == owner_id)).first()
    if owner is None or owner.role == Role.admin.value:
        return True
    quotas, usage = quotas_of(settings, owner.quotas or {}), usage_now(session, owner_id)
    return usage.queued < quotas.queued_jobs and usage.cpu_hours < quotas.cpu_hours
