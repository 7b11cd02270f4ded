"""Alerts as stored: a job's fired rules (`jobs.alerts_fired`) and their `job.alert` events, written in one
transaction; and the `stalled` rule, checked with the heartbeat of whoever watches the training process."""

from typing import Any

from sqlalchemy.orm import Session

from store.outbox import record_event
from store.tables import Job, JobStatus, utcnow


def record_firings(session: Session, job: Job, firings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the firings (`{"rule", "when", "action", "step", "message"}`) of rules that have not fired on this job
    before, each with its `job.alert` event; the ones added. Does not commit; the caller holds the job's row
    (it has just updated it, fenced by its attempt)."""
    fired = list(job.alerts_fired or [])
    known = {entry["rule"] for entry in fired}
    added = []
    for firing in firings:
        if firing["rule"] in known:
            continue
        entry = {**firing, "at": utcnow().isoformat()}
        known.add(firing["rule"])
        fired.append(entry)
        added.append(entry)
        data = {"job_id": job.id, "name": job.name, "model": job.model, "attempt": job.attempts, **entry}
        record_event(session, "job.alert", data, job_id=job.id)
    if added:
        job.alerts_fired = fired
        if any(entry["action"] == "stop" for entry in added):
            job.early_stop_requested = True
        session.flush()
    return added


def check_stalled(session: Session, job: Job) -> list[dict[str, Any]]:
    """Fire the job's `stalled` rule when no progress was written for its `seconds` (the training process hung,
    or waits on its data). Does not commit."""
    if job.status != JobStatus.running.value or job.progress_at is None:
        return []
    idle = (utcnow() - job.progress_at).total_seconds()
    known = {entry["rule"] for entry in job.alerts_fired or []}
    for index, rule in enumerate(job.spec.get("alerts") or []):
        if rule.get("when") == "stalled" and index not in known and idle >= float(rule["seconds"]):
            message = (
                f"no training progress for {idle:.0f} s (the rule allows {rule['seconds']:g} s), at step {job.step}"
            )
            firing = {"rule": index, "when": "stalled", "action": rule.get("action", "notify"), "step": job.step,
                      "message": message}  # fmt: skip
            return record_firings(session, job, [firing])
    return []


def stop_reason(job: Job) -> str | None:
    """What an alert that stopped the job says, for its `error`: the first firing whose action was `stop`."""
    for entry in job.alerts_fired or []:
        if entry["action"] == "stop":
            return f"stopped by alert rule {entry['rule']} ({entry['when']}): {entry['message']}"
    return None
