"""A job's spec as clients send it and the store keeps it: one flat JSON object made of two parts, what to
train (the model kind's spec, `models.kinds`: the network, its data, optimizer and schedule) and how to run it
(`RunOptions`: the queue's fields, which no training code reads).

The API validates requests with `JobSpec` and the sweeps build their trials with it; the worker and the model
code read a stored spec through `models.kinds.parse_spec`, which takes only what to train.
"""

from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, create_model, field_validator
from pydantic.fields import FieldInfo

from models.kinds import KINDS, ModelKind
from models.kinds.common import CommonSpec

TAG_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,39}$"
Tag = Annotated[str, StringConstraints(pattern=TAG_PATTERN)]
ANNOTATIONS = frozenset({"tags", "notes"})  # given with the spec, kept beside it (the job's tags and notes)


class RunOptions(BaseModel):
    """How a job runs: its place in the queue, its attempts and what an executor must have for it."""

    model_config = ConfigDict(extra="forbid")

    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first; equal priorities run oldest first.")
    timeout_s: int | None = Field(
        None, ge=1, le=30 * 24 * 3600, description="Fail the job when one attempt runs longer than this."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="How often a job whose worker was lost is started again before it fails."
    )
    gpus: float = Field(
        0,
        ge=0,
        le=64,
        description="GPUs the job needs: 0, a fraction (sharing one) or a whole number. 0 keeps today's behaviour: "
        "`device: auto` still uses a GPU a worker has. A job that asks for more than any running worker has waits "
        "in the queue, with the reason in GET /jobs/{id}.",
    )
    cpus: float = Field(1, gt=0, le=256, description="CPU cores the job needs.")
    preemptible: bool = Field(
        True,
        description="Whether a queued job of a priority higher by PREEMPT_PRIORITY_GAP may take this job's place while "
        "it runs: it checkpoints, goes back to the queue (ahead of the jobs submitted after it) and resumes exactly "
        "where it stopped. `false` is for admins.",
    )

    tags: list[Tag] = Field(
        default_factory=list,
        max_length=20,
        description="Labels to find the job by (`GET /jobs?tag=`): lower-case letters, digits, `_`, `.`, `-`; up to 40 "
        "characters each. Kept beside the spec, not in it: `PATCH /jobs/{id}` changes them later.",
    )
    notes: str | None = Field(
        None, max_length=10_000, description="What you want to remember about the run; `PATCH /jobs/{id}` changes it."
    )

    def stored_spec(self) -> dict[str, Any]:
        """The spec as the job keeps it (JSON): every field but the annotations (`tags`, `notes`)."""
        return self.model_dump(mode="json", exclude=set(ANNOTATIONS))

    @field_validator("gpus")
    @classmethod
    def _whole_gpus_above_one(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError("a fraction of a GPU is below 1; above 1, a whole number of GPUs")
        return value


def _job_class(kind: ModelKind[Any], taken: set[str]) -> type[BaseModel]:
    """A job of `kind`: the kind's spec, then the run options, in one flat object, named as the kind's spec (the
    OpenAPI schema keeps the kind's name and description: a client sends one object). It is an attribute of
    this module under that name (what pickle looks it up by: a plan's probe gets its spec that way)."""
    name = kind.spec.__name__ if kind.spec.__name__ not in taken else f"{kind.spec.__name__}_{kind.name}"
    job = create_model(name, __base__=(RunOptions, kind.spec), __module__=__name__)
    job.__doc__ = kind.spec.__doc__
    taken.add(name)
    return job


_taken = set(globals())  # a job class takes its kind's spec's name unless this module has that name already
JOB_CLASSES: dict[str, type[BaseModel]] = {name: _job_class(kind, _taken) for name, kind in KINDS.items()}
globals().update({job.__name__: job for job in JOB_CLASSES.values()})

if TYPE_CHECKING:

    class JobSpec(RunOptions, CommonSpec):
        """Any kind's job (what they all have), for the type checker; at run time the union of the kinds'."""

else:
    JobSpec = Annotated[Union[tuple(JOB_CLASSES.values())], Field(discriminator="model")]  # noqa: UP007
job_spec_adapter: TypeAdapter[JobSpec] = TypeAdapter(JobSpec)


def parse_job_spec(raw: dict[str, Any]) -> JobSpec:
    """A job's spec (a request's, or a stored one) into its typed class: both parts, every field checked."""
    return job_spec_adapter.validate_python(raw)


@cache
def default_job_spec(kind: str) -> dict[str, Any]:
    """The spec (as stored, JSON) of a job of `kind` that gives only `model`: every default filled in. Do not
    change the answer: it is shared."""
    return parse_job_spec({"model": kind}).stored_spec()


@cache
def job_fields(kind: str) -> dict[str, FieldInfo]:
    """The fields a job of `kind` takes: its kind's and the run options."""
    return type(parse_job_spec({"model": kind})).model_fields
