"""Watching training, measured: event delay with many followers, downsampled curves, plot rendering,
and the web page's load in a headless browser. Loopback only; every loop is bounded in time.

    .venv/bin/python bench/watching.py [--clients 50] [--seconds 20]

Starts the API (one process, uvicorn) on a fresh SQLite file in a temporary folder and plays the
trainer itself: it writes points into the store as a worker would, so it knows when each point
was written. Prints one table; targets: event delay p50 < 1.5 s and p99 < 3 s with 50 followers,
`/metrics?max_points=500` p50 < 30 ms on a 100,000-point job, `plot.png` of a 10,000-point job
< 300 ms, the page loaded in < 1 s and < 300 KB.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.browser import browser_session
from harness.net import free_port, wait_until_up
from specs import parse_job_spec
from store.attempts import claim_next
from store.engine import make_engine, make_session_factory
from store.jobs import create_job
from store.migrate import upgrade
from store.points import add_points
from store.tables import Job, JobStatus
from store.transitions import transition


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_api(folder: Path, database_url: str | None = None) -> tuple[subprocess.Popen[bytes], str, str]:
    """An API process over `database_url` (default: a SQLite file in `folder`); it, its URL, the database's."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = database_url or f"sqlite:///{folder / 'jobs.db'}"
    env = {**os.environ, "DATABASE_URL": database, "DATA_DIR": str(folder), "EVENTS_INTERVAL_SECONDS": "0.5"}
    api = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    wait_until_up(url, api)
    return api, url, database


def new_running_job(sessions: Any, spec: dict[str, Any]) -> int:
    with sessions() as session:
        job, _ = create_job(session, parse_job_spec(spec))
        session.commit()
        attempt = claim_next(sessions, "bench")
        assert attempt is not None and attempt.job_id == job.id
        return job.id


def finish(sessions: Any, job_id: int, steps: int) -> None:
    with sessions() as session:
        transition(session, Job.id == job_id, JobStatus.succeeded, final_metrics={"test_accuracy": 0.5}, step=steps)
        session.commit()


def event_delays(url: str, sessions: Any, clients: int, seconds: float) -> list[float]:
    """Write a train point every 0.1 s (a test point every 10th) while `clients` follow the job."""
    steps = int(seconds * 10)
    job_id = new_running_job(sessions, {"model": "torch_mlp", "max_steps": steps, "log_every": 1, "eval_every": 10})
    written: dict[int, float] = {}
    arrivals: list[dict[int, float]] = [{} for _ in range(clients)]
    ready = threading.Barrier(clients + 1)

    def follow(i: int) -> None:
        with httpx.Client(base_url=url, timeout=seconds + 30) as client:
            with client.stream("GET", f"/jobs/{job_id}/events") as response:
                ready.wait()
                name = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:") and name == "points":
                        now = time.monotonic()
                        for point in json.loads(line[5:])["points"]:
                            arrivals[i].setdefault(point["step"], now)
                    elif line.startswith("data:") and name == "end":
                        return

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    for step in range(1, steps + 1):
        points = [(step, "train", 1.0 / step, 0.5)] + ([(step, "test", 1.0, 0.5)] if step % 10 == 0 else [])
        with sessions() as session:
            add_points(session, job_id, points)
            session.commit()
        written[step] = time.monotonic()
        time.sleep(0.1)
    finish(sessions, job_id, steps)
    for t in threads:
        t.join(timeout=seconds + 30)
    return [arrived[step] - written[step] for arrived in arrivals for step in arrived]


def timed_gets(client: httpx.Client, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append(time.perf_counter() - started)
    return times


def long_job(sessions: Any, points: int) -> int:
    job_id = new_running_job(sessions, {"model": "torch_mlp", "max_steps": points, "log_every": 1,
                                        "eval_every": 100})  # fmt: skip
    rows = [(s, "train", 2.0 / (1 + s / 1000), min(0.9, s / points)) for s in range(1, points + 1)]
    with sessions() as session:
        for start in range(0, len(rows), 20_000):
            add_points(session, job_id, rows[start : start + 20_000])
        session.commit()
    finish(sessions, job_id, points)
    return job_id


def page_load(url: str) -> tuple[float, int]:
    """Seconds to the load event and bytes transferred, in headless Chromium."""
    for browser in browser_session():
        page = browser.new_page()
        page.goto(url + "/", wait_until="load")
        timing = page.evaluate(
            """() => {
                const nav = performance.getEntriesByType("navigation")[0];
                const bytes = performance.getEntriesByType("resource").reduce((n, r) => n + r.transferSize, 0);
                return {seconds: nav.loadEventEnd / 1000, bytes: bytes + nav.transferSize};
            }"""
        )
        return float(timing["seconds"]), int(timing["bytes"])
    raise RuntimeError("no browser")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        api, url, database = start_api(Path(tmp))
        engine = make_engine(database)
        upgrade(engine)
        sessions = make_session_factory(engine)
        try:
            delays = event_delays(url, sessions, args.clients, args.seconds)
            big = long_job(sessions, 100_000)
            ten_k = long_job(sessions, 10_000)
            with httpx.Client(base_url=url, timeout=120) as client:
                full = timed_gets(client, f"/jobs/{big}/metrics", 5)
                small = timed_gets(client, f"/jobs/{big}/metrics?max_points=500", 50)
                plot = timed_gets(client, f"/jobs/{ten_k}/plot.png", 20)
            seconds, size = page_load(url)
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait()
            engine.dispose()
    print("| what | measured | target |\n|---|---|---|")
    print(f"| event delay, {args.clients} followers ({len(delays)} arrivals) | p50 {statistics.median(delays):.3f} s, "
          f"p99 {percentile(delays, 0.99):.3f} s | p50 < 1.5 s, p99 < 3 s |")  # fmt: skip
    print(f"| /metrics, 100,000 points, whole | p50 {statistics.median(full) * 1000:.0f} ms | - |")
    print(f"| /metrics?max_points=500, 100,000 points | p50 {statistics.median(small) * 1000:.1f} ms, "
          f"p99 {percentile(small, 0.99) * 1000:.1f} ms | p50 < 30 ms |")  # fmt: skip
    print(f"| plot.png, 10,000 points | p50 {statistics.median(plot) * 1000:.0f} ms | < 300 ms |")
    print(f"| web page in headless Chromium | {seconds * 1000:.0f} ms, {size / 1024:.0f} KB | < 1 s, < 300 KB |")


if __name__ == "__main__":
    main()
