"""What the sweep routes send back."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.jobs.schemas import PlanPublic
from store.tables import SweepStatus


class TrialPublic(BaseModel):
    number: int = Field(description="The trial's number in its sweep, from 0.")
    job_id: int | None = Field(description="Its job (None when its spec was refused or the job was deleted).")
    status: str = Field(description="The job's status (`stopped_early` when early stopping ended it).")
    params: dict[str, Any] = Field(description="The values the search chose; the rest of the spec is the base.")
    objective: float | None = Field(description="The objective's metric at the trial's last test evaluation.")
    best: float | None = Field(description="The best value of that metric over its evaluations.")
    step: int
    max_steps: int | None
    error: str | None = None


class SweepSummary(BaseModel):
    id: int
    name: str | None
    status: SweepStatus
    method: str
    trials: int = Field(description="Trials the sweep runs in all.")
    trials_created: int
    created_at: datetime
    finished_at: datetime | None
    best: TrialPublic | None = Field(description="The best trial so far by the objective.")


class SweepPublic(SweepSummary):
    spec: dict[str, Any] = Field(description="The request, with every default filled in.")
    counts: dict[str, int] = Field(description="Trials per status.")
    steps_spent: int = Field(description="Training steps the trials have run.")
    steps_if_run_to_end: int = Field(description="The steps of every trial created so far, run to its max_steps.")
    leaderboard: list[TrialPublic] = Field(
        description="Trials best first by the objective; trials without an evaluation last."
    )
    error: str | None = None


class SweepsPublic(BaseModel):
    data: list[SweepSummary]
    count: int


class SweepPlanPublic(BaseModel):
    """A sweep's plan: nothing is stored or queued."""

    spec: dict[str, Any] = Field(description="The request, with every default filled in.")
    trials: int
    max_concurrent: int
    steps_without_early_stopping: int = Field(description="Every trial run to its max_steps.")
    expected_steps: int = Field(
        description="With early stopping, if a 1/`reduction_factor` share of the trials at each rung goes on "
        "(the same as without when the sweep has none)."
    )
    expected_seconds: float | None = Field(
        description="Expected wall time with `max_concurrent` trials running at once, each at the speed of "
        "`trial_plan` (None when that has no speed to go by)."
    )
    expected_seconds_without_early_stopping: float | None
    live_executors: int = Field(description="Executors running now: fewer than max_concurrent run fewer at once.")
    trial_plan: PlanPublic = Field(
        description="The plan of a trial with the base spec (searched fields change its cost, and its speed)."
    )


class SweepImportancesPublic(BaseModel):
    importances: dict[str, float] = Field(
        description="Each searched field that varied -> the share of the objective's variance it explains "
        "(Optuna's fANOVA), largest first; empty until two trials have run to their end."
    )
    trials_used: int = Field(description="The trials that ran to their end (succeeded, with an objective).")
