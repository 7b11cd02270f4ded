"""Answers as rows: a list of dicts that turns into a pandas DataFrame (pandas is an optional extra,
`pip install 'cifar-jobs[notebook]'`)."""

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np


class Rows(list[dict[str, Any]]):
    """Rows of one table (a curve's points, runs, trials), each a dict of column -> value; `types`: the numpy
    dtypes of the columns known to hold one (a curve's steps and losses), which makes `to_pandas` fill them
    without looking at each value's type."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), types: Mapping[str, str] | None = None) -> None:
        super().__init__(rows)
        self.types = dict(types or {})

    def to_pandas(self) -> Any:
        """The rows as a `pandas.DataFrame`, one column per key (in the order they first appear; a row without
        one has None there)."""
        try:
            import pandas
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "to_pandas needs pandas: pip install 'cifar-jobs[notebook]' (or pandas itself)", name="pandas"
            ) from None
        if not self:
            return pandas.DataFrame()
        columns = list(dict.fromkeys(chain.from_iterable(self)))
        every_row_has_each = sum(map(len, self)) == len(columns) * len(self)
        return pandas.DataFrame({key: self._column(key, every_row_has_each) for key in columns}, columns=columns)

    def _column(self, key: str, every_row_has_it: bool) -> np.ndarray | list[Any]:
        def values() -> Iterator[Any]:
            return map(itemgetter(key), self) if every_row_has_it else (row.get(key) for row in self)

        if key in self.types:
            try:
                return np.fromiter(values(), self.types[key], count=len(self))
            except (TypeError, ValueError):  # a None among them: pandas decides
                pass
        return list(values())


def run_row(job: dict[str, Any]) -> dict[str, Any]:
    """One job as a row of the runs table: who, what and when, then each spec field, then each final metric
    (a spec field or metric named like a column before it gets a `spec.` or `final.` prefix)."""
    row: dict[str, Any] = {key: job.get(key) for key in (
        "id", "name", "model", "status", "owner", "tags", "created_at", "finished_at", "running_seconds")}  # fmt: skip
    row["step"] = (job.get("progress") or {}).get("step")
    sweep = job.get("sweep") or {}
    row["sweep"], row["trial"] = sweep.get("id"), sweep.get("trial")
    for prefix, values in (("spec.", job.get("spec") or {}), ("final.", job.get("final_metrics") or {})):
        for key, value in values.items():
            if key == "model":
                continue
            row[prefix + key if key in row else key] = value
    return row
