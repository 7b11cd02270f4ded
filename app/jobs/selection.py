"""Which jobs a list or an export holds, and in what order: the query `GET /jobs` and `GET /jobs.csv` share."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from app.access.permissions import owned_by
from app.jobs.list_keys import job_conditions, job_order
from app.users.schemas import OWNER_PATTERN
from specs import TAG_PATTERN
from store.jobs import JobFilter, JobOrder
from store.tables import JobStatus


@dataclass(frozen=True)
class JobSelection:
    which: JobFilter
    order: JobOrder


def job_selection(
    request: Request,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    model: Annotated[
        str | None, Query(max_length=40, pattern=r"^[a-z0-9_]+$", description="Only jobs of this model kind.")
    ] = None,
    tag: Annotated[str | None, Query(pattern=TAG_PATTERN, description="Only jobs with this tag.")] = None,
    name_contains: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only jobs whose name holds this text (any case).")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            pattern=r"^-?[a-z_]{1,40}$",
            description="A key of the job (`id`, `name`, `status`, `model`, `created_at`), of its final metrics "
            "(`test_accuracy`, `best_test_accuracy`, `train_loss`, ...) or of its spec (`learning_rate`, "
            "`optimizer`, ...); `-` first for descending. Jobs without the value come last. Default: newest first.",
        ),
    ] = None,
    where: Annotated[
        list[str] | None,
        Query(
            max_length=200,
            description="A condition on a key (the same keys as `sort`, and list fields such as `hidden_units`): "
            "`optimizer=adam`, `test_accuracy>0.5`, `hidden_units=[800,600,400]`; operators `= != > >= < <=` "
            "(a text, a flag or a list: `=` and `!=`). Repeat it for more; all must hold. Jobs without the value "
            "never match.",
        ),
    ] = None,
    mine: Annotated[bool, Query(description="Only the jobs you submitted (with VISIBILITY=own, always).")] = False,
    owner: Annotated[
        str | None,
        Query(
            pattern=OWNER_PATTERN,
            description="Only the jobs this user (by name; a removed user's: `NAME (removed #ID)`) submitted, of "
            "those you may see.",
        ),
    ] = None,
) -> JobSelection:
    which = JobFilter(status, model, tag, name_contains, job_conditions(where or []), owned_by(request, mine), owner)
    return JobSelection(which, job_order(sort))


JobSelectionDep = Annotated[JobSelection, Depends(job_selection)]
