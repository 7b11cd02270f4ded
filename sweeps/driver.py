"""Moving sweeps forward: one pass shows new evaluations to the pruner (stopping hopeless trials),
creates trials up to `max_concurrent`, and finishes a sweep whose trials have all ended.

Every pass starts from the database alone, so a driver can stop and start (or two can run) at any
time: a trial and its job are created in one transaction, and a trial number exists at most once. Which sweeps
have new evaluations to show is read from the job-events outbox (`job.evaluated`, written with the points) from
the id the last pass read through; the first pass, and every `RESYNC_EVERY_PASSES`-th, looks at every sweep.
One driver runs at a time (`app.sweeps.driver_process`, under a lease that `hold` renews in each unit of work).
"""

import logging
from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from specs import job_spec_adapter
from store.leases import LeaseLost
from store.outbox import newest_event_id
from store.sweeps import (
    TrialExists,
    TrialView,
    add_trial,
    evaluations,
    find_sweep,
    finish_sweep,
    record_pruning,
    request_early_stop,
    running_sweep_ids,
    sweep_trials,
    sweeps_evaluated,
)
from store.tables import JobStatus, SweepStatus
from store.unit_of_work import unit_of_work
from sweeps import search
from sweeps.spec import SweepSpec

log = logging.getLogger(__name__)
# Bounded work per pass: a sweep creates at most this many trials in one pass (each new trial rebuilds
# the study), so a sweep whose proposals are refused cannot take the driver from the others.
MAX_NEW_TRIALS_PER_PASS = 4
MAX_REFUSED_IN_A_ROW = 20  # then the sweep fails, saying why: its search space proposes no runnable job
# A pass reads every running sweep's evaluations this often, not only those the outbox told of: an event whose
# transaction took its id before another's but committed after the driver had read past that one is seen then
# (a resync, as controllers that watch a change feed do). With SWEEP_INTERVAL_SECONDS of 1: every 30 s.
RESYNC_EVERY_PASSES = 30
# Whether the sweep's owner (None: nobody's) may have one more job queued now; no: the trial waits for a later pass.
RoomInQueue = Callable[[Session, int | None], bool]
# Called last in every unit of work the pass writes in, before it commits: it raises (store.leases.LeaseLost) when
# this driver may no longer act (its lease went to another driver), which undoes the unit and ends the pass.
Hold = Callable[[Session], None]


def _always(_session: Session, _owner_id: int | None) -> bool:
    return True


def _free(_session: Session) -> None:
    pass


class EvaluationNews:
    """Which running sweeps have trials that evaluated since the last pass, read from the job-events outbox from
    the id the last pass read through: only those have evaluations to show the pruner. One per driver."""

    def __init__(self, resync_every_passes: int = RESYNC_EVERY_PASSES) -> None:
        self.read_through: int | None = None  # None: nothing read yet; the next pass looks at every sweep
        self.resync_every_passes = resync_every_passes
        self._passes_since_resync = 0

    def sweeps_to_prune(self, session: Session, running: list[int]) -> set[int]:
        newest = newest_event_id(session)
        if self.read_through is None or self._passes_since_resync + 1 >= self.resync_every_passes:
            found, self._passes_since_resync = set(running), 0
        else:
            found = sweeps_evaluated(session, self.read_through, newest) & set(running)
            self._passes_since_resync += 1
        self.read_through = newest
        return found


def advance_all(
    sessions: sessionmaker[Session],
    room_in_queue: RoomInQueue = _always,
    news: EvaluationNews | None = None,
    hold: Hold = _free,
) -> None:
    """One pass over every running sweep (with `news`: the evaluations of those it names; without: of all)."""
    with sessions() as session:
        sweep_ids = running_sweep_ids(session)
        to_prune = set(sweep_ids) if news is None else news.sweeps_to_prune(session, sweep_ids)
    for sweep_id in sweep_ids:
        try:
            advance(sessions, sweep_id, room_in_queue, prune=sweep_id in to_prune, hold=hold)
        except LeaseLost:
            raise  # this driver may no longer act: the pass ends
        except Exception:  # one broken sweep must not stop the others
            log.exception("sweep %s: the driver's pass failed", sweep_id)


def advance(
    sessions: sessionmaker[Session],
    sweep_id: int,
    room_in_queue: RoomInQueue = _always,
    prune: bool = True,
    hold: Hold = _free,
) -> None:
    """Move one sweep on: show its new evaluations to the pruner (when `prune`), then create trials, each in
    its own transaction (each ending with `hold`)."""
    with unit_of_work(sessions) as session:
        sweep = find_sweep(session, sweep_id)
        if sweep.status != SweepStatus.running:
            return
        spec = SweepSpec.model_validate(sweep.spec)
        name, owner_id = sweep.name, sweep.owner_id
        if spec.early_stopping is not None and prune:
            _show_new_evaluations(session, spec, sweep_id)
        hold(session)
    for _ in range(MAX_NEW_TRIALS_PER_PASS):
        try:
            with unit_of_work(sessions) as session:
                more = _create_trial(session, spec, sweep_id, name, lambda: room_in_queue(session, owner_id))
                hold(session)
            if not more:
                return
        except TrialExists:
            return  # another driver created this trial first: the next pass sees it


def _show_new_evaluations(session: Session, spec: SweepSpec, sweep_id: int) -> None:
    views = sweep_trials(session, sweep_id)
    evals = evaluations(session, [v.job.id for v in views if v.job is not None], spec.objective.metric)
    pending = [
        v
        for v in views
        if v.job is not None and any(step > v.trial.pruned_through_step for step, _ in evals.get(v.job.id, []))
    ]
    if not pending:
        return
    study = search.rebuild_study(spec, sweep_id, views, evals, replaying={v.trial.number for v in pending})
    for view in pending:
        assert view.job is not None
        shown, stop, state = search.show_evaluations(
            study, view.trial.number, evals[view.job.id], view.trial.pruned_through_step
        )
        record_pruning(session, view.trial.id, shown, state)
        if stop and view.job.status == JobStatus.running and shown < view.job.max_steps:
            log.info("sweep %s: trial %s (job %s) stops early at step %s", sweep_id, view.trial.number,
                     view.job.id, shown)  # fmt: skip
            request_early_stop(session, view.job.id)


def _refused_in_a_row(views: list[TrialView]) -> list[TrialView]:
    """The newest trials whose specs were refused, up to the last one that got a job."""
    streak: list[TrialView] = []
    for view in reversed(views):
        if view.trial.job_id is not None or view.trial.error is None:
            break
        streak.append(view)
    return streak


def _create_trial(
    session: Session, spec: SweepSpec, sweep_id: int, sweep_name: str | None, room_in_queue: Callable[[], bool]
) -> bool:
    """Create the sweep's next trial when it needs one and there is room; whether to try for another."""
    assert spec.trials is not None
    views = sweep_trials(session, sweep_id)
    active = sum(view.active for view in views)
    # a trial that failed (its job crashed, its spec was refused) is replaced by a new proposal, `trials`
    # times at most; a grid has none to make (its replacement would be a copy of a point already run)
    failed = 0 if spec.method == "grid" else sum(view.status == JobStatus.failed for view in views)
    if len(views) - failed >= spec.trials or len(views) >= 2 * spec.trials:
        if active == 0:
            finish_sweep(session, sweep_id)
        return False
    if active >= spec.max_concurrent or not room_in_queue():
        return False  # max_concurrent active, or the owner's queued_jobs quota full: the next pass looks again
    number = len(views)
    evals = evaluations(session, [v.job.id for v in views if v.job is not None], spec.objective.metric)
    study = search.rebuild_study(spec, sweep_id, views, evals)
    params, state = search.ask(study, spec)
    label = f"{sweep_name or f'sweep {sweep_id}'} #{number}"[:200]
    try:
        job_spec = job_spec_adapter.validate_python({**spec.base, **params, "name": label})
        error = None
    except ValidationError as exc:  # ranges are checked ends only: a combination may still be refused
        job_spec, error = None, f"the trial's spec was refused: {exc.errors()[0]['msg']}"
    if not add_trial(session, sweep_id, number, params, state, job_spec, error):
        return False  # the sweep was cancelled
    log.info("sweep %s: trial %s %s", sweep_id, number, params if error is None else error)
    refused = _refused_in_a_row(sweep_trials(session, sweep_id))
    if len(refused) >= MAX_REFUSED_IN_A_ROW:
        reason = (f"its last {len(refused)} proposals were refused, the last one: {refused[0].trial.error}; "
                  "narrow the search space to values the model kind accepts together")  # fmt: skip
        log.warning("sweep %s failed: %s", sweep_id, reason)
        finish_sweep(session, sweep_id, reason)
        return False
    return True
