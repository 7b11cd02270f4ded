"""Answers as rows: a list of dicts that turns into a pandas DataFrame (pandas is an optional extra,
`pip install 'cifar-jobs[notebook]'`)."""

from typing import Any


class Rows(list[dict[str, Any]]):
    """Rows of one table (a curve's points, runs, trials), each a dict of column -> value."""

    def to_pandas(self) -> Any:
        """The rows as a `pandas.DataFrame`, one column per key (in the order they first appear)."""
        try:
            import pandas
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "to_pandas needs pandas: pip install 'cifar-jobs[notebook]' (or pandas itself)", name="pandas"
            ) from None
        if not self:
            return pandas.DataFrame()
        keys = list(self[0])
        if all(len(row) == len(keys) and row.keys() == self[0].keys() for row in self):  # a curve, a table of runs
            return pandas.DataFrame({key: [row[key] for row in self] for key in keys}, columns=keys)
        columns: dict[str, None] = {}
        for row in self:
            columns.update(dict.fromkeys(row))
        return pandas.DataFrame.from_records(self, columns=list(columns))


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
