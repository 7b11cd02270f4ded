"""Tracking, measured against an MLflow tracking server in the same run, both on SQLite: recording a 100,000-step
curve, reading it whole and as a plot-sized view, and a runs table sorted by a metric and filtered by a parameter.

    python -m venv .venv-peers && .venv-peers/bin/pip install mlflow 'psycopg[binary]'   # throwaway, not ours
    # --postgres: both on a throwaway PostgreSQL server (MLflow through psycopg, as this service)
    .venv/bin/python bench/peers/tracking.py --mlflow-python .venv-peers/bin/python [--runs 1000] [--rounds 5]

MLflow runs as `mlflow server` (its own process, SQLite backend store) and is spoken to over its REST API, the one
`MlflowClient` uses (`runs/log-batch`, at most 1,000 metrics a request; `metrics/get-history`, paged;
`get-history-bulk-interval`, the sampled view its UI plots; `runs/search`). This service: the API (one uvicorn
process) reading what a training process writes into the store (`store.points.add_points`, one transaction a flush
of 1,000 steps, as the worker's reporter does). The curve: train loss and accuracy every step, test loss and
accuracy every 100 steps (202,000 values on each side). Reads: medians of `--rounds` interleaved rounds.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.hostile_load import cpu_model
from bench.watching import finish, new_running_job, start_api
from harness.net import free_port
from harness.postgres import start_postgres
from harness.waiting import wait_until
from specs import parse_job_spec
from store.engine import make_engine, make_session_factory
from store.jobs import create_job
from store.points import add_points
from store.tables import Job, JobStatus
from store.transitions import transition

STEPS, TEST_EVERY, FLUSH_STEPS = 100_000, 100, 1000
OPTIMIZERS = ("sgd", "adam")


def curve_points(start: int, stop: int) -> list[tuple[int, str, float, float]]:
    points: list[tuple[int, str, float, float]] = []
    for step in range(start, stop):
        points.append((step, "train", 2.0 / (1 + step / 1000), min(0.9, step / STEPS)))
        if step % TEST_EVERY == 0:
            points.append((step, "test", 2.1 / (1 + step / 1000), min(0.88, step / STEPS)))
    return points


def database_bytes(url: str) -> int:
    """A database's size: its SQLite file, or PostgreSQL's pg_database_size."""
    if url.startswith("sqlite"):
        return Path(url.split("///", 1)[1]).stat().st_size
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


class MLflow:
    """An `mlflow server` on SQLite (or the PostgreSQL database `database_url` names), and its REST API."""

    def __init__(self, python: str, folder: Path, database_url: str | None = None) -> None:
        self.database_url = database_url or f"sqlite:///{folder / 'mlflow.db'}"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [python, "-m", "mlflow", "server", "--backend-store-uri", self.database_url,
             "--default-artifact-root", str(folder / "mlartifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        wait_until(self._up, 120, "mlflow server answering /health", every=0.5)
        self.http = httpx.Client(base_url=self.url + "/api/2.0/mlflow", timeout=300)
        self.experiment = self.post("experiments/create", {"name": "bench"})["experiment_id"]

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {self.process.returncode}")
        try:
            return httpx.get(self.url + "/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.post(path, json=body).raise_for_status().json()
        return answer

    def new_run(self, name: str) -> str:
        return str(
            self.post("runs/create", {"experiment_id": self.experiment, "run_name": name})["run"]["info"]["run_id"]
        )

    def log_curve(self, run_id: str) -> None:
        metrics: list[dict[str, Any]] = []
        for step, split, loss, accuracy in curve_points(1, STEPS + 1):
            metrics += [{"key": f"{split}_loss", "value": loss, "timestamp": 0, "step": step},
                        {"key": f"{split}_accuracy", "value": accuracy, "timestamp": 0, "step": step}]  # fmt: skip
            if len(metrics) >= 1000:  # its limit a request
                self.post("runs/log-batch", {"run_id": run_id, "metrics": metrics[:1000]})
                metrics = metrics[1000:]
        if metrics:
            self.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})

    def whole_curve(self, run_id: str) -> int:
        count = 0
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            token = None
            while True:
                params: dict[str, Any] = {"run_id": run_id, "metric_key": key, "max_results": 25000}
                if token:
                    params["page_token"] = token
                page = self.http.get("metrics/get-history", params=params).raise_for_status().json()
                count += len(page.get("metrics", []))
                token = page.get("next_page_token")
                if not token:
                    break
        return count

    def plot_view(self, run_id: str) -> int:
        count = 0
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            params = {"run_ids": run_id, "metric_key": key, "max_results": 500}
            page = httpx.get(f"{self.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval", params=params,
                             timeout=300).raise_for_status()  # fmt: skip
            count += len(page.json().get("metrics", []))
        return count

    def store_runs(self, count: int) -> None:
        for i in range(count):
            run_id = self.new_run(f"run {i}")
            params = [{"key": "optimizer", "value": OPTIMIZERS[i % 2]},
                      {"key": "learning_rate", "value": str(0.1 / (1 + i % 4))}]  # fmt: skip
            metrics = [{"key": "test_accuracy", "value": 0.3 + (i % 97) / 400, "timestamp": 0, "step": 0}]
            self.post("runs/log-batch", {"run_id": run_id, "params": params, "metrics": metrics})

    def runs_table(self) -> int:
        page = self.post("runs/search", {"experiment_ids": [self.experiment], "filter": "params.optimizer = 'adam'",
                                         "order_by": ["metrics.test_accuracy DESC"], "max_results": 100})  # fmt: skip
        return len(page["runs"])

    def stop(self) -> None:
        self.http.close()
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


class Ours:
    """This service's API over a SQLite file (or the PostgreSQL database `database_url` names) that the bench writes
    as a training process would."""

    def __init__(self, folder: Path, database_url: str | None = None) -> None:
        self.api, self.url, self.database_url = start_api(folder, database_url)
        self.engine = make_engine(self.database_url)
        self.sessions = make_session_factory(self.engine)
        self.http = httpx.Client(base_url=self.url, timeout=300)

    def log_curve(self) -> int:
        job_id = new_running_job(self.sessions, {"model": "torch_mlp", "max_steps": STEPS, "log_every": 1,
                                                 "eval_every": TEST_EVERY})  # fmt: skip
        for start in range(1, STEPS + 1, FLUSH_STEPS):
            with self.sessions() as session:
                add_points(session, job_id, curve_points(start, start + FLUSH_STEPS))
                session.commit()
        finish(self.sessions, job_id, STEPS)
        return job_id

    def whole_curve(self, job_id: int) -> int:
        return len(self.http.get(f"/jobs/{job_id}/metrics").raise_for_status().json()["points"])

    def plot_view(self, job_id: int) -> int:
        return len(
            self.http.get(f"/jobs/{job_id}/metrics", params={"max_points": 500}).raise_for_status().json()["points"]
        )

    def store_runs(self, count: int) -> None:
        with self.sessions() as session:
            for i in range(count):
                spec = {"model": "torch_mlp", "name": f"run {i}", "optimizer": OPTIMIZERS[i % 2],
                        "learning_rate": 0.1 / (1 + i % 4)}  # fmt: skip
                job, _ = create_job(session, parse_job_spec(spec))
                session.flush()
                transition(
                    session,
                    Job.id == job.id,
                    JobStatus.cancelled,
                    final_metrics={"test_accuracy": 0.3 + (i % 97) / 400},
                )
            session.commit()

    def runs_table(self) -> int:
        page = self.http.get("/jobs", params={"where": "optimizer=adam", "sort": "-test_accuracy", "limit": 100})
        return len(page.raise_for_status().json()["data"])

    def main_query_ms(self) -> float:
        """What the database alone spends on the runs table's filter and sort (EXPLAIN ANALYZE's execution time of
        that query, written here as the store builds it), a part of the request's time."""
        sqlite = self.database_url.startswith("sqlite")
        spec, metric = ("json_extract(spec, '$.optimizer')", "CAST(json_extract(final_metrics, '$.test_accuracy') "
                        "AS FLOAT)") if sqlite else ("spec ->> 'optimizer'",
                                                     "CAST(final_metrics ->> 'test_accuracy' AS FLOAT)")  # fmt: skip
        query = f"SELECT id FROM jobs WHERE {spec} = 'adam' ORDER BY {metric} DESC, id DESC LIMIT 100"
        with self.engine.connect() as connection:
            if sqlite:  # no execution time from SQLite: the query's own, timed
                return timed(lambda: connection.execute(text(query)).all()) * 1000
            lines = [row[0] for row in connection.execute(text("EXPLAIN ANALYZE " + query))]
        return float(next(line for line in lines if line.startswith("Execution Time")).split()[2])

    def stop(self) -> None:
        self.http.close()
        self.engine.dispose()
        os.killpg(self.api.pid, signal.SIGTERM)
        self.api.wait(timeout=30)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mlflow-python", default=str(ROOT / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="both on a throwaway PostgreSQL server (on disk)")
    args = parser.parse_args()
    server = start_postgres(free_port(), on_disk=True) if args.postgres else None
    urls = (server.new_database_url(), server.new_database_url()) if server else (None, None)
    with tempfile.TemporaryDirectory() as folder, ExitStack() as started:
        if server is not None:
            started.callback(server.stop)
        (Path(folder) / "ours").mkdir()
        (Path(folder) / "theirs").mkdir()
        ours = Ours(Path(folder) / "ours", urls[0])
        started.callback(ours.stop)
        theirs = MLflow(args.mlflow_python, Path(folder) / "theirs", urls[1])
        started.callback(theirs.stop)
        run_id = theirs.new_run("curve")
        job_box: list[int] = []
        record = {
            "ours": timed(lambda: job_box.append(ours.log_curve())),
            "theirs": timed(lambda: theirs.log_curve(run_id)),
        }
        job_id = job_box[0]
        sizes_after_curve = {
            "ours": database_bytes(ours.database_url),
            "theirs": database_bytes(theirs.database_url),
        }
        store = {
            "ours": timed(lambda: ours.store_runs(args.runs)),
            "theirs": timed(lambda: theirs.store_runs(args.runs)),
        }
        assert ours.whole_curve(job_id) == theirs.whole_curve(run_id) // 2 == STEPS + STEPS // TEST_EVERY
        table = f"runs table: {args.runs:,} runs, the 100 best with optimizer=adam"
        reads: dict[str, dict[str, Callable[[], object]]] = {
            "whole curve": {"ours": lambda: ours.whole_curve(job_id), "theirs": lambda: theirs.whole_curve(run_id)},
            "plot view (500 points a series)": {"ours": lambda: ours.plot_view(job_id),
                                                "theirs": lambda: theirs.plot_view(run_id)},
            table: {"ours": ours.runs_table, "theirs": theirs.runs_table},
        }  # fmt: skip
        for sides in reads.values():  # warm
            for read in sides.values():
                read()
        times: dict[str, dict[str, list[float]]] = {what: {"ours": [], "theirs": []} for what in reads}
        for _ in range(args.rounds):
            for what, sides in reads.items():
                for side, read in sides.items():
                    times[what][side].append(timed(read))
        main_query_ms = ours.main_query_ms()
    values = 2 * (STEPS + STEPS // TEST_EVERY)
    where = "PostgreSQL (on disk, fsync off)" if server else "SQLite"
    print(f"CPU: {cpu_model()}; {where} both; MLflow {mlflow_version(args.mlflow_python)}; reads: {args.rounds} "
          "interleaved rounds, medians\n")  # fmt: skip
    print("| what | this service | MLflow tracking server | this service's advantage |")
    print("|---|---|---|---|")
    rate = {side: values / seconds for side, seconds in record.items()}
    print(f"| record a 100,000-step curve ({values:,} values) | {rate['ours']:,.0f} values/s | "
          f"{rate['theirs']:,.0f} values/s | {rate['ours'] / rate['theirs']:.1f}x |")  # fmt: skip
    size = {side: sizes_after_curve[side] / values * 1e6 / 2**20 for side in sizes_after_curve}
    print(f"| database size per million values | {size['ours']:.1f} MB | {size['theirs']:.1f} MB | "
          f"{size['theirs'] / size['ours']:.2f}x |")  # fmt: skip
    print(f"| (setup) store {args.runs:,} finished runs | {store['ours']:.1f} s, in the store, one transaction | "
          f"{store['theirs']:.1f} s, two requests a run | not comparable |")  # fmt: skip
    for what, measured in times.items():
        mine, peer = statistics.median(measured["ours"]) * 1000, statistics.median(measured["theirs"]) * 1000
        print(f"| read: {what} | {mine:.1f} ms | {peer:.1f} ms | {peer / mine:.1f}x |")
    print(f"\nOf this service's runs table, the filtering and sorting query alone: {main_query_ms:.1f} ms")


def mlflow_version(python: str) -> str:
    done = subprocess.run([python, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True)
    return done.stdout.strip()


if __name__ == "__main__":
    main()
