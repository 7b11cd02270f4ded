"""What the job routes send back."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.kinds.common import NO_CONTROL_CHARACTERS
from specs import Tag
from store.artifacts import ArtifactInfo
from store.tables import AttemptOutcome, Job, JobAttempt, JobStatus


class JobAnnotations(BaseModel):
    """PATCH /jobs/{id}: what a person says about a run. Only the fields sent change; null clears one."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200, pattern=NO_CONTROL_CHARACTERS)
    tags: list[Tag] | None = Field(
        None, max_length=20, description="Lower-case letters, digits, `_`, `.`, `-`; up to 40 characters each."
    )
    notes: str | None = Field(None, max_length=10_000)


class Progress(BaseModel):
    step: int = Field(description="Training steps done.")
    max_steps: int
    fraction: float = Field(description="step / max_steps")
    steps_per_second: float | None = Field(None, description="Training speed, evaluation time left out.")
    images_per_second: float | None = None


class SweepMembership(BaseModel):
    id: int = Field(description="The sweep (GET /sweeps/{id}).")
    trial: int = Field(description="The trial's number in it.")


class JobPublic(BaseModel):
    id: int
    name: str | None
    model: str
    status: JobStatus
    spec: dict[str, Any] = Field(description="The spec as the job runs it, every default filled in.")
    progress: Progress
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    queued_seconds: float | None = Field(None, description="From submission to the (last) start.")
    running_seconds: float | None = Field(None, description="From the (last) start to the end, or to now.")
    attempts: int
    executor: Literal["local", "ray"] | None = Field(
        None, description="Who runs (or last ran) it: a local worker, or the Ray dispatcher."
    )
    placement: dict[str, Any] | None = Field(
        None, description='Where: `{"worker": name}` locally; `{"node": id, "ray_submission_id": id}` on Ray.'
    )
    cancel_requested: bool
    preemptions: int = Field(
        0, description="How often it gave its place to a job of a much higher priority (and resumed where it stopped)."
    )
    error: str | None = Field(
        None, description="Why the job failed, when it did; for one an alert rule stopped, the rule and what it saw."
    )
    alerts_fired: list[dict[str, Any]] = Field(
        [],
        description='The spec\'s alert rules that fired: `{"rule": its index in spec.alerts, "when", "action", "step", '
        '"message", "at"}`, oldest first.',
    )
    waiting_reason: str | None = Field(
        None,
        description="Why a queued job cannot start: no running worker could take it (its `gpus`, `cpus`), its "
        "owner's running_jobs quota, or it was preempted (naming the job it made room for).",
    )
    final_metrics: dict[str, Any] | None = Field(
        None, description="test_accuracy, best_test_accuracy, train_loss, steps_per_second, peak_rss_mb, ..."
    )
    trained_model: "ModelInfo | None" = Field(None, description="The stored model, once the job has succeeded.")
    reproducibility: dict[str, Any] | None = Field(
        None,
        description="What the run depended on beyond its spec: the service's version and git commit (`git_dirty`), "
        "Python, torch, torchvision, NumPy and their BLAS, the CPU or GPU, threads, the data set's manifest hash, "
        "`runtime` (device, precision, memory format) and, for a fine-tuned job, its parent's record.",
    )
    reproduces: int | None = Field(None, description="The job this one runs again (GET /jobs/{id}/reproduction).")
    sweep: SweepMembership | None = Field(None, description="The sweep whose trial this job is, if any.")
    owner: str | None = Field(None, description="The user who submitted it (None before there were users).")
    tags: list[str] = Field([], description="A person's labels (PATCH /jobs/{id}); GET /jobs?tag= finds them.")
    notes: str | None = Field(None, description="A person's notes on the run (PATCH /jobs/{id}).")

    @classmethod
    def from_job(
        cls,
        job: Job,
        now: datetime,
        model: "ArtifactInfo | None" = None,
        waiting_reason: str | None = None,
    ) -> "JobPublic":
        end = job.finished_at or now
        return cls(
            id=job.id,
            name=job.name,
            model=job.model,
            status=JobStatus(job.status),
            spec=job.spec,
            progress=Progress(
                step=job.step,
                max_steps=job.max_steps,
                fraction=job.step / job.max_steps if job.max_steps else 0.0,
                steps_per_second=job.steps_per_second,
                images_per_second=job.images_per_second,
            ),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            heartbeat_at=job.heartbeat_at,
            queued_seconds=(job.started_at - job.created_at).total_seconds() if job.started_at else None,
            running_seconds=(end - job.started_at).total_seconds() if job.started_at else None,
            attempts=job.attempts,
            executor=None if job.worker is None and job.placement is None else _executor(job),
            placement=job.placement or ({"worker": job.worker} if job.worker else None),
            cancel_requested=job.cancel_requested,
            preemptions=job.preemptions,
            error=job.error,
            alerts_fired=job.alerts_fired or [],
            waiting_reason=waiting_reason,
            final_metrics=job.final_metrics,
            reproducibility=full_record(job),
            reproduces=job.reproduces,
            sweep=SweepMembership(id=job.trial.sweep_id, trial=job.trial.number) if job.trial is not None else None,
            owner=job.owner.name if job.owner is not None else None,
            tags=job.tags or [],
            notes=job.notes,
            trained_model=ModelInfo(
                size_bytes=model.size_bytes, sha256=model.sha256, download_url=f"/jobs/{job.id}/model"
            )
            if model
            else None,
        )


def full_record(job: Job) -> dict[str, Any] | None:
    """The stored record with where and how the job trained (its final metrics say)."""
    if job.reproducibility is None:
        return None
    runtime = {key: (job.final_metrics or {}).get(key) for key in ("device", "precision", "memory_format")}
    return {**job.reproducibility, "runtime": runtime}


def _executor(job: Job) -> Literal["local", "ray"]:
    ray = (job.worker or "").startswith("ray:") or "ray_submission_id" in (job.placement or {})
    return "ray" if ray else "local"


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int = Field(description="Jobs matching the filters, over all pages.")


class ModelInfo(BaseModel):
    size_bytes: int
    sha256: str
    download_url: str = Field(description="GET it for the safetensors file.")


JobPublic.model_rebuild()


class AttemptPublic(BaseModel):
    number: int = Field(description="1 for the first attempt, then one more for each start.")
    executor: str | None = Field(None, description="The worker or dispatcher that ran it.")
    placement: dict[str, Any] | None = Field(None, description="Where it ran, as its executor said (a Ray node).")
    started_at: datetime
    ended_at: datetime | None = Field(None, description="None while it runs.")
    outcome: AttemptOutcome | None = Field(
        None,
        description="How it ended: `succeeded`, `failed`, `cancelled`, `stopped_early`, `timed_out`, `preempted` "
        "(it gave its place to a job of a much higher priority), `handed_back` (its executor stopped), "
        "`lost_heartbeat` (its executor went silent) or `lost` (its process ended without saying how); None while "
        "it runs.",
    )
    resumed_from_step: int | None = Field(None, description="The checkpoint's step it started from (0: the start).")
    steps_done: int | None = Field(None, description="The job's step when it ended.")
    preempted_for: int | None = Field(None, description="The job it was asked to give its place to (preemption).")

    @classmethod
    def from_row(cls, row: JobAttempt) -> "AttemptPublic":
        return cls(number=row.number, executor=row.executor, placement=row.placement, started_at=row.started_at,
                   ended_at=row.ended_at, outcome=AttemptOutcome(row.outcome) if row.outcome else None,
                   resumed_from_step=row.resumed_from_step, steps_done=row.steps_done,
                   preempted_for=row.preempted_for)  # fmt: skip


class AttemptsPublic(BaseModel):
    data: list[AttemptPublic]


class ReproductionPublic(BaseModel):
    of: int = Field(description="The job reproduced.")
    status: Literal["pending", "identical", "different", "original deleted"] = Field(
        description="`identical`: every point of the curve equal bit for bit; `pending` until both have ended."
    )
    largest_differences: dict[str, float] = Field(
        {}, description="Per split and metric (`test_accuracy`, ...), the largest absolute difference at one step."
    )
    points_in_one_curve_only: int = Field(0, description="(split, step) points that only one of the curves has.")
    record_differences: dict[str, list[Any]] = Field(
        {},
        description="Each field of the two records that differs (`runtime.precision`, `packages.torch`, ...): "
        "[the original's, the reproduction's].",
    )


class PlanPublic(BaseModel):
    """A job's plan: nothing is queued."""

    spec: dict[str, Any] = Field(description="The spec as it would run, every default filled in.")
    parameters: int
    flops_per_image_forward: int = Field(
        description="Multiply-adds count 2 (torch's FLOP counter; by hand for numpy_mlp)."
    )
    flops_per_train_step: int = Field(description="Forward and backward (about 3 forwards) of a batch.")
    flops_per_evaluation: int = Field(description="A forward pass over a 10,000-image test set (CIFAR-10's).")
    evaluations: int = Field(description="Evaluations on the test set it will run.")
    parameter_memory_mb: float = Field(description="Weights, gradients and the optimizer's state, in float32.")
    activation_memory_mb: float = Field(description="Every layer's output for one batch, kept for the backward pass.")
    probe_step_seconds: float | None = Field(description="Measured: one training step on the CPU (when probed).")
    probe_evaluation_seconds: float | None = Field(description="Measured: one evaluation on the CPU (when probed).")
    probe_peak_memory_mb: float | None = Field(description="Measured: the probe process's peak resident memory.")
    expected_seconds: float | None = Field(description="Expected wall time from start to end.")
    expected_seconds_range: list[float] | None = Field(
        None,
        description="When the time is estimated from FLOPs (no earlier job of the same shape, no probe): the "
        "expected time at the fastest and the slowest speed this machine reached for the kind.",
    )
    expected_from: str | None = Field(
        description="Earlier jobs of the same shape, the probe, or an estimate from the network's FLOPs at this "
        "machine's measured speed for the kind."
    )
    note: str | None = Field(None, description="Why there was no probe, when there was none.")
    queue_position: int = Field(description="Queued jobs that would run before it.")
    expected_wait_seconds: float | None = Field(description="Until it could start, over the running executors.")
    expected_wait_unknown: str | None = Field(description="Why the wait is unknown, when it is.")
    waiting_reason: str | None = Field(description="Why no running executor could take it, when none could.")


class ModelKindPublic(BaseModel):
    model: str
    description: str = Field(description="What the kind trains (its spec class's description).")
    package: str = Field(description="The package that registered it: `cifar-jobs` for the built-in kinds.")
    version: str = Field(description="That package's version (empty for the built-in kinds).")
    defaults: dict[str, Any] = Field(description="The spec of a job that gives only `model`, every default filled in.")
    json_schema: dict[str, Any] = Field(
        description="The JSON Schema of its jobs (every field: type, default, range, description): what the page's "
        "form is made from."
    )


class ModelKindsPublic(BaseModel):
    models: list[ModelKindPublic]
