"""A handle on one hyperparameter sweep: its state as last read, its leaderboard and what mattered."""

import time

from cifar_jobs.resource import Resource
from cifar_jobs.tables import Rows

FINISHED = frozenset({"finished", "failed", "cancelled"})


class Sweep(Resource):
    """Sweep `id` as the service last described it (`data`, the answer of `GET /sweeps/{id}`)."""

    collection = "/sweeps"

    def wait(self, timeout: float | None = None, interval: float = 2.0) -> "Sweep":
        """Read it every `interval` seconds until it ends; TimeoutError when `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().status not in FINISHED:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"sweep {self.id} did not end within {timeout} s")
            time.sleep(interval)
        return self

    def cancel(self) -> "Sweep":
        """Create no more trials, and cancel the queued and running ones."""
        self.data = self._connection.call("POST", f"{self.path}/cancel")
        return self

    def leaderboard(self) -> Rows:
        """Every trial best first: its number, job, status, objective, step, and each searched parameter as a
        column of its own."""
        rows = []
        for trial in self.refresh().data["leaderboard"]:
            row = {key: value for key, value in trial.items() if key != "params"}
            row.update(trial["params"])
            rows.append(row)
        return Rows(rows)

    def importances(self) -> dict[str, float]:
        """Each searched field that varied -> the share of the objective's variance it explains (fANOVA)."""
        return dict(self._connection.call("GET", f"{self.path}/importances")["importances"])
