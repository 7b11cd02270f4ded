"""The Python client's tables, measured against the raw HTTP answers they are made from: a 101,000-point curve
(100,000 train points, 1,000 test points) and a 1,000-run table, each as a pandas DataFrame.

    .venv/bin/python bench/client_tables.py [--rounds 15]

Starts the API (one uvicorn process) on a fresh SQLite file holding both, written through the store. In interleaved
rounds, each read three ways: the raw answers (httpx GETs of the same pages, JSON parsed: the reference), the same
plus a DataFrame built by hand (what a notebook without the client would do), and the client
(`job.curve().to_pandas()`, `client.runs().to_pandas()`). Target: the client within 1.2x of the raw answers, as the
median of each round's ratio (the reads of one round are seconds apart; the host's speed drifts over minutes).
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hostile_load import cpu_model, store_long_curve
from bench.watching import start_api
from bench.workspace_page import JOBS, store_jobs
from cifar_jobs import Client
from store.engine import make_engine, make_session_factory


def raw_curve(http: httpx.Client, job_id: int) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        page = http.get(f"/jobs/{job_id}/metrics", params=params).raise_for_status().json()
        points += page["points"]
        if page["next_since"] is None:
            return points
        params = {"since": page["next_since"]}


def raw_runs(http: httpx.Client) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    while True:
        page = http.get("/jobs", params={"limit": 500, "offset": len(jobs)}).raise_for_status().json()
        jobs += page["data"]
        if len(jobs) >= page["count"]:
            return jobs


def timed(read: Callable[[], Any]) -> float:
    started = time.perf_counter()
    read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        api, url, database = start_api(Path(folder))
        try:
            engine = make_engine(database)
            store_jobs(make_session_factory(engine))
            engine.dispose()
            curve_job = store_long_curve(database)
            with httpx.Client(base_url=url, timeout=120) as http, Client(url=url, timeout=120) as client:
                job = client.job(curve_job)
                reads: dict[str, Callable[[], Any]] = {
                    "curve, raw": lambda: raw_curve(http, curve_job),
                    "curve, raw + DataFrame": lambda: pandas.DataFrame(raw_curve(http, curve_job)),
                    "curve, client": lambda: job.curve().to_pandas(),
                    "runs, raw": lambda: raw_runs(http),
                    "runs, raw + DataFrame": lambda: pandas.json_normalize(raw_runs(http)),
                    "runs, client": lambda: client.runs().to_pandas(),
                }
                assert len(job.curve()) == 101_000 and len(client.runs()) == JOBS + 1
                for read in reads.values():  # warm: the API's caches, the connection, pandas' imports
                    read()
                times: dict[str, list[float]] = {name: [] for name in reads}
                for _ in range(args.rounds):
                    for name, read in reads.items():
                        times[name].append(timed(read))
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait(timeout=30)
    median = {name: statistics.median(values) * 1000 for name, values in times.items()}
    ratio = {
        what: statistics.median(
            ours / raw for ours, raw in zip(times[f"{what}, client"], times[f"{what}, raw"], strict=True)
        )
        for what in ("curve", "runs")
    }
    print(f"CPU: {cpu_model()}; {args.rounds} interleaved rounds, medians; SQLite, one API process\n")
    print("| read | raw answers (reference) | raw + DataFrame by hand | client, as a DataFrame | client / raw |")
    print("|---|---|---|---|---|")
    for what, label in (("curve", "one curve, 101,000 points"), ("runs", f"runs table, {JOBS + 1:,} jobs")):
        raw, by_hand, ours = median[f"{what}, raw"], median[f"{what}, raw + DataFrame"], median[f"{what}, client"]
        print(f"| {label} | {raw:.0f} ms | {by_hand:.0f} ms | {ours:.0f} ms | {ratio[what]:.2f} |")


if __name__ == "__main__":
    main()
