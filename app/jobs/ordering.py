"""`GET /jobs?sort=`: a key of the job, of its final metrics or of its spec, `-` first for descending."""

from app.plumbing.refusals import InvalidField
from models.kinds import KINDS, default_spec
from store.jobs import NEWEST_FIRST, JobOrder

COLUMNS = ("id", "name", "status", "model", "created_at")
METRICS = ("test_accuracy", "best_test_accuracy", "test_loss", "train_loss", "steps_per_second", "images_per_second")


def _sortable_spec_fields() -> dict[str, bool]:
    """Each spec field whose default (in some kind) is a number or a text -> whether it is a number; lists,
    flags and fields without a default are left out."""
    fields: dict[str, bool] = {}
    for kind in KINDS:
        for field, value in default_spec(kind).items():
            if field not in COLUMNS and isinstance(value, int | float | str) and not isinstance(value, bool):
                fields.setdefault(field, not isinstance(value, str))
    return fields


SPEC_FIELDS = _sortable_spec_fields()
SORT_KEYS = (*COLUMNS, *METRICS, *sorted(SPEC_FIELDS))


def job_order(sort: str | None) -> JobOrder:
    """The order `sort` names (newest first without one). Raises InvalidField naming `sort`."""
    if sort is None:
        return NEWEST_FIRST
    descending, key = sort.startswith("-"), sort.removeprefix("-")
    if key in COLUMNS:
        return JobOrder("column", key, descending)
    if key in METRICS:
        return JobOrder("metric", key, descending)
    if key in SPEC_FIELDS:
        return JobOrder("spec", key, descending, numeric=SPEC_FIELDS[key])
    raise InvalidField("sort", f"cannot sort by {key!r}: one of {', '.join(SORT_KEYS)} (- first: descending)", "query")
