"""Per-user quotas, checked when a user submits: queued jobs, submissions a minute, CPU- and GPU-hours in 7 days;
and priorities above ADMIN_PRIORITY_ABOVE for admins only. Running jobs are capped where executors claim
(`store.attempts.claim_next`): a job past its owner's cap waits queued. Admins, the API_KEY and the single-user
mode have no quotas. Each refusal is a 429 that names the quota, the usage and when it frees."""

import math
import threading
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from cachetools import TTLCache
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy.orm import Session

from app.access.auth import Principal
from app.http.refusals import Forbidden, OverQuota
from app.settings import ApiSettings
from store.quotas import Counts, Usage, counts_of, hold_user, hours_of, role_and_quotas
from store.tables import Role, utcnow

WINDOW = timedelta(days=7)
MAX_USERS_KEPT = 10_000  # each API process's memory of users' hours
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


class RecentHours:
    """Each user's CPU- and GPU-hours of the last 7 days as this API process last read them, reread when older
    than `ttl_seconds` (QUOTA_HOURS_SECONDS, 10): summing them reads every job the user ran in the week, too much
    for every submission, and an hours quota does not need them to the second."""

    def __init__(self, ttl_seconds: float) -> None:
        # user -> (cpu, gpu); bounded: past MAX_USERS_KEPT the expired go first, then the least recently used
        self._read: TTLCache[int, tuple[float, float]] = TTLCache(MAX_USERS_KEPT, ttl_seconds, timer=time.monotonic)
        self._lock = threading.Lock()

    def of(self, session: Session, user_id: int) -> tuple[float, float]:
        with self._lock:
            read = self._read.get(user_id)
        if read is not None:
            return read
        read = hours_of(session, user_id, utcnow() - WINDOW)
        with self._lock:
            self._read[user_id] = read
        return read


def counts_now(session: Session, user_id: int, hold: bool = False, count_up_to: int | None = None) -> Counts:
    return counts_of(session, user_id, utcnow() - timedelta(minutes=1), hold, count_up_to)


def usage_now(session: Session, user_id: int) -> Usage:
    """Exact, for GET /users/me/usage."""
    cpu, gpu = hours_of(session, user_id, utcnow() - WINDOW)
    return Usage(**vars(counts_now(session, user_id)), cpu_hours=cpu, gpu_hours=gpu)


def quotas_apply(principal: Principal) -> bool:
    return principal.user_id is not None and not principal.is_admin


class PlanRate:
    """Each user's dry-run plans in any 60 seconds, counted in this API process (`limits`' moving window): a plan
    stores nothing to count in the database, and may cost a network's build in a child process."""

    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, settings: ApiSettings, principal: Principal) -> None:
        """Count one plan, or raise OverQuota (429) when the user has had QUOTA_PLANS_PER_MINUTE."""
        if not quotas_apply(principal):
            return
        per_minute = settings.quota_plans_per_minute
        limit, user = RateLimitItemPerMinute(per_minute), str(principal.user_id)
        if per_minute > 0 and self._limiter.hit(limit, "plans", user):
            return
        reset = self._limiter.get_window_stats(limit, "plans", user).reset_time if per_minute > 0 else time.time() + 60
        raise OverQuota(
            f"quota plans_per_minute: {principal.name} has asked for {per_minute} plans in the last 60 s, the quota; "
            f"the next in {max(1, math.ceil(reset - time.time()))} s",
            retry_after=max(1, math.ceil(reset - time.time())),
        )


def check_submission(
    session: Session,
    settings: ApiSettings,
    hours: RecentHours,
    principal: Principal,
    priority: int,
    gpus: float,
    jobs: int = 1,
    inserted: bool = False,
    preemptible: bool = True,
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
    if not preemptible:
        raise Forbidden("preemptible: false (a job no other may take the place of) is for admins")
    quotas = quotas_of(settings, principal.quotas)
    enough = max(quotas.queued_jobs, quotas.submissions_per_minute) + jobs + 1  # counted past this: over either way
    if not inserted:
        hold_user(session, principal.user_id)
    already = jobs if inserted else 0
    counts = _before(counts_now(session, principal.user_id, inserted, enough), already)
    if counts.queued + jobs > quotas.queued_jobs or counts.submitted_last_minute + jobs > quotas.submissions_per_minute:
        counts = _before(counts_now(session, principal.user_id), already)  # exact, for the message
    cpu, gpu = hours.of(session, principal.user_id)
    usage = Usage(**vars(counts), cpu_hours=cpu, gpu_hours=gpu)
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


def _before(counts: Counts, inserted_jobs: int) -> Counts:
    """The counts without the jobs this submission has already inserted."""
    return replace(
        counts, queued=counts.queued - inserted_jobs, submitted_last_minute=counts.submitted_last_minute - inserted_jobs
    )


def room_in_queue(settings: ApiSettings, hours: RecentHours, session: Session, owner_id: int | None) -> bool:
    """Whether a sweep of `owner_id` may queue one more trial: within their queued_jobs quota and with CPU-hours
    left (admins and nobody's sweeps: always; a sweep's trials are not counted as submissions a minute)."""
    if owner_id is None:
        return True
    owner = role_and_quotas(session, owner_id)
    if owner is None or owner[0] == Role.admin.value:
        return True
    quotas = quotas_of(settings, owner[1])
    return (
        counts_now(session, owner_id, count_up_to=quotas.queued_jobs + 1).queued < quotas.queued_jobs
        and hours.of(session, owner_id)[0] < quotas.cpu_hours
    )
