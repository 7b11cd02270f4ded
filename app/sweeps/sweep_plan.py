"""A sweep's plan, answered without storing it (`POST /sweeps?dry_run=true`): its trials, their steps with and
without early stopping, and the expected wall time with `max_concurrent` trials at once."""

from sqlalchemy.orm import Session

from app.jobs.job_plan import Prober, live_executors, plan_and_speed
from app.sweeps.schemas import SweepPlanPublic
from specs import parse_job_spec
from sweeps.budget import budget
from sweeps.spec import SweepSpec


def sweep_plan(
    session: Session, spec: SweepSpec, prober: Prober, alive_seconds: float, use_probe: bool
) -> SweepPlanPublic:
    base = spec.base_spec()
    trial_plan, speed = plan_and_speed(session, parse_job_spec(base), prober, alive_seconds, use_probe)
    spent = budget(spec)
    at_once = min(spec.max_concurrent, spent.trials)

    def wall(expected: bool) -> float | None:
        if speed is None:
            return None
        # each kind of trial (by its max_steps) equally often; its seconds at the steps it is expected to run
        seconds = [
            speed.seconds(base, max(1, round(done if expected else steps))) for steps, done in spent.steps_per_trial
        ]
        return round(spent.trials * sum(seconds) / len(seconds) / at_once, 1)

    return SweepPlanPublic(
        spec=spec.model_dump(mode="json"),
        trials=spent.trials,
        max_concurrent=spec.max_concurrent,
        steps_without_early_stopping=round(spent.steps_without_early_stopping),
        expected_steps=round(spent.expected_steps),
        expected_seconds=wall(expected=True),
        expected_seconds_without_early_stopping=wall(expected=False),
        live_executors=live_executors(session, alive_seconds),
        trial_plan=trial_plan,
    )
