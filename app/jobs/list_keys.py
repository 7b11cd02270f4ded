"""What `GET /jobs` sorts and filters by: a key of the job, of its final metrics or of its spec.

`sort=-test_accuracy` (`-` first for descending); `where=optimizer=adam`, `where=test_accuracy>0.5`,
`where=hidden_units=[800,600,400]` (each `where` one condition, all of them must hold).
"""

import json
import math
import re
from typing import Any

from app.http.refusals import InvalidField
from models.kinds import KINDS
from specs import default_job_spec
from store.jobs import NEWEST_FIRST, OPERATORS, JobCondition, JobOrder, ValueKind
from store.tables import MAX_INT32

COLUMNS: dict[str, ValueKind] = {"id": "number", "name": "text", "status": "text", "model": "text"}
SORTED_COLUMNS = (*COLUMNS, "created_at")
METRICS = ("test_accuracy", "best_test_accuracy", "test_loss", "train_loss", "steps_per_second", "images_per_second")
MAX_CONDITIONS = 10


def _kind_of(value: Any) -> ValueKind | None:
    if isinstance(value, bool):
        return "flag"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "list"
    return None  # no default (None): the kind of the value a condition gives


def _spec_fields() -> dict[str, ValueKind | None]:
    """Every field of some kind's spec -> how its values compare (by its default)."""
    fields: dict[str, ValueKind | None] = {}
    for kind in KINDS:
        for field, value in default_job_spec(kind).items():
            if field not in COLUMNS and fields.get(field) is None:
                fields[field] = _kind_of(value)
    return fields


SPEC_FIELDS = _spec_fields()
SORTED_SPEC_FIELDS = {field: kind for field, kind in SPEC_FIELDS.items() if kind in ("number", "text")}
SORT_KEYS = (*SORTED_COLUMNS, *METRICS, *sorted(SORTED_SPEC_FIELDS))


def job_order(sort: str | None) -> JobOrder:
    """The order `sort` names (newest first without one). Raises InvalidField naming `sort`."""
    if sort is None:
        return NEWEST_FIRST
    descending, key = sort.startswith("-"), sort.removeprefix("-")
    if key in SORTED_COLUMNS:
        return JobOrder("column", key, descending)
    if key in METRICS:
        return JobOrder("metric", key, descending)
    if key in SORTED_SPEC_FIELDS:
        return JobOrder("spec", key, descending, numeric=SORTED_SPEC_FIELDS[key] == "number")
    raise InvalidField("sort", f"cannot sort by {key!r}: one of {', '.join(SORT_KEYS)} (- first: descending)", "query")


# the key and the operator, matched at the start of the stripped condition (no pattern spans the value: a
# value of many spaces cannot make the match backtrack)
KEY_AND_OPERATOR = re.compile(r"([a-z_][a-z0-9_]{0,39})\s*(!=|>=|<=|=|>|<)")
MAX_CONDITION_CHARS = 1000
LARGEST_NUMBER = 2**63 - 1  # what both databases compare as a number (a larger one is an OverflowError there)
LARGEST = {"id": MAX_INT32}  # a column's own range (PostgreSQL refuses to compare an int4 with a larger number)


def _value(text: str) -> Any:
    """A condition's value: JSON when it reads as JSON (`0.5`, `true`, `[800,600,400]`), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def job_condition(text: str) -> JobCondition:
    """`field<operator>value` as a condition. Raises InvalidField naming `where` and what is wrong."""
    if len(text) > MAX_CONDITION_CHARS:
        raise InvalidField("where", f"a condition of at most {MAX_CONDITION_CHARS} characters, {len(text)} given",
                           "query")  # fmt: skip
    stripped = text.strip()
    match = KEY_AND_OPERATOR.match(stripped)
    if match is None:
        raise InvalidField("where", f"{text!r}: write field, operator (one of {' '.join(OPERATORS)}), value", "query")
    key, operator = match.groups()
    raw = stripped[match.end() :].strip()
    value = _value(raw)
    if key in COLUMNS:
        source, kind = "column", COLUMNS[key]
    elif key in METRICS:
        source, kind = "metric", "number"
    elif key in SPEC_FIELDS:
        source, kind = "spec", SPEC_FIELDS[key] or _kind_of(value) or "text"
    else:
        known = ", ".join((*COLUMNS, *METRICS, *sorted(SPEC_FIELDS)))
        raise InvalidField("where", f"{text!r}: no field {key!r}; one of {known}", "query")
    if kind == "text":
        value = raw  # `name=1` is the text "1"
    elif _kind_of(value) != kind or (kind == "number" and isinstance(value, bool)):
        raise InvalidField("where", f"{text!r}: {key} is a {kind}, {raw!r} is not", "query")
    largest = LARGEST.get(key, LARGEST_NUMBER)
    if kind == "number" and not (math.isfinite(value) and abs(value) <= largest):
        raise InvalidField(
            "where", f"{text[:60]!r}: {key} compares with a number from {-largest} to {largest}", "query"
        )
    if kind != "number" and operator not in ("=", "!="):
        raise InvalidField("where", f"{text!r}: a {kind} compares only with = or !=", "query")
    return JobCondition(source, key, operator, value, kind)  # type: ignore[arg-type]


def job_conditions(texts: list[str]) -> tuple[JobCondition, ...]:
    if len(texts) > MAX_CONDITIONS:
        raise InvalidField("where", f"at most {MAX_CONDITIONS} conditions, {len(texts)} given", "query")
    return tuple(job_condition(text) for text in texts)
