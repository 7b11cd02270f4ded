"""Preemption by priority: which running job gives its place to a queued one of a much higher priority.

The executor pass asks for it (`workers/executor.py`); the job it names checkpoints at its next heartbeat and goes
back to the queue (`store/attempts.py::preempt_attempt`), keeping its place among equals (its id), and resumes
exactly where it stopped on whichever executor takes it next. Pure: it decides on what the pass read."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from store.attempts import PlacedJob, Waiting


@dataclass(frozen=True)
class PreemptionRules:
    """PREEMPTION, PREEMPT_PRIORITY_GAP, PREEMPT_MIN_RUN_SECONDS and PREEMPT_MAX_TIMES (workers/settings.py)."""

    enabled: bool
    priority_gap: int
    min_run_seconds: float
    max_times: int


def may_be_preempted(job: PlacedJob, waiting: Waiting, rules: PreemptionRules, now: datetime) -> bool:
    """Whether `job` may give its place to `waiting`: it opted in (`preemptible`), its priority is lower by the gap
    at least, it has run `min_run_seconds` in this attempt (so it always makes progress) and was preempted fewer
    than `max_times` times."""
    return (
        job.preemptible
        and job.priority <= waiting.priority - rules.priority_gap
        and job.started_at is not None
        and now - job.started_at >= timedelta(seconds=rules.min_run_seconds)
        and job.preemptions < rules.max_times
    )


def choose_victim(
    running: list[PlacedJob],
    waiting: Waiting,
    free_gpus: float,
    free_cpus: float,
    rules: PreemptionRules,
    now: datetime,
) -> PlacedJob | None:
    """The running job to preempt so that `waiting` can start here: the lowest priority, then the most recently
    started, of those that may be preempted and whose place (with what is free) fits it; None when there is none,
    or when a preemption asked for earlier is still under way (one at a time)."""
    if not rules.enabled or any(job.preempt_requested for job in running):
        return None
    fitting = [
        job
        for job in running
        if may_be_preempted(job, waiting, rules, now)
        and job.gpus + free_gpus >= waiting.gpus
        and job.cpus + free_cpus >= waiting.cpus
    ]
    if not fitting:
        return None
    return min(fitting, key=lambda job: (job.priority, -(job.started_at or now).timestamp()))
