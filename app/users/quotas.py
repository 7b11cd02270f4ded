"""Per-user quotas, checked when a user submits: queued jobs, submissions a minute, CPU- and GPU-hours in 7 days;
and priorities above ADMIN_PRIORITY_ABOVE for admins only. Admins, the API_KEY and the single-user mode have
no quotas. Each refusal is a 429 that names the quota, the usage and when it frees."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.plumbing.auth import Principal
from app.plumbing.refusals import Forbidden, OverQuota
from app.settings import ApiSettings
from store.tables import utcnow
from store.users import Usage, usage_of

WINDOW = timedelta(days=7)
QUOTA_NAMES = ("queued_jobs", "submissions_per_minute", "cpu_hours", "gpu_hours")


@dataclass(frozen=True)
class Quotas:
    queued_jobs: int
    submissions_per_minute: int
    cpu_hours: float
    gpu_hours: float


def quotas_of(settings: ApiSettings, overrides: dict[str, Any]) -> Quotas:
    """The settings' defaults, with the user's overrides (an admin's `PUT /users/{id}/quotas`)."""
    defaults = {name: getattr(settings, f"quota_{name}") for name in QUOTA_NAMES}
    return Quotas(**{**defaults, **{k: v for k, v in overrides.items() if k in defaults}})


def usage_now(session: Session, user_id: int) -> Usage:
    now = utcnow()
    return usage_of(session, user_id, now - WINDOW, now - timedelta(minutes=1))


def quotas_apply(principal: Principal) -> bool:
    return principal.user_id is not None and not principal.is_admin


def check_submission(
    session: Session, settings: ApiSettings, principal: Principal, priority: int, gpus: float, jobs: int = 1
) -> None:
    """Raise Forbidden or OverQuota when `principal` may not queue `jobs` more jobs of this priority and GPUs."""
    if principal.user_id is None or not quotas_apply(principal):
        return
    if priority > settings.admin_priority_above:
        raise Forbidden(f"priority {priority}: above {settings.admin_priority_above} is for admins")
    quotas, usage = quotas_of(settings, principal.quotas), usage_now(session, principal.user_id)
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
