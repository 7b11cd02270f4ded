"""Several users, measured: claims with fair share (100 users, 10,000 queued jobs) on SQLite and PostgreSQL, and
`POST /jobs` / `GET /jobs/{id}` latency with a user's token against the API_KEY.

    .venv/bin/python bench/users_load.py [--claims 300] [--requests 3000] [--rounds 3]

Claims: 10,000 queued jobs, written through the store, owned by 100 users (100 each, in the order they were
submitted: user 0's all first), claimed one at a time by one in-process executor, each claim its own
transaction, as a worker makes them. The reference, in the same run and interleaved round by round: the same
number of jobs owned by nobody (the single-user mode), where fair share has one owner to weigh.
Requests: one API process (uvicorn, SQLite) answering one client in turn, the API_KEY and a member's token in
interleaved rounds; each job is cancelled once read (not measured), so the member's queue stays as short as the
default QUOTA_QUEUED_JOBS keeps it (the rate quota is lifted). Claims check the owner's running cap, as a worker's
do. Targets: at least 50 claims/s on PostgreSQL and 20 on SQLite with fair share on; p99 with a token within 10%
of the API_KEY's.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hostile_load import cpu_model
from harness.net import free_port, wait_until_up
from harness.postgres import start_postgres
from models.kinds.common import SPEC_VERSION
from specs import parse_job_spec
from store.attempts import claim_next
from store.engine import make_engine, make_session_factory
from store.executors import register_executor
from store.jobs import new_job
from store.migrate import upgrade
from store.settings import StoreSettings
from store.tables import Role
from store.users import create_user

USERS, JOBS = 100, 10_000
SPEC = parse_job_spec({"model": "numpy_mlp", "max_steps": 5})
RUNNING_CAP = StoreSettings().quota_running_jobs  # as a worker claims: each claim checks the owner's cap


def fill(database_url: str, owned: bool) -> Any:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        owners = [create_user(session, f"user{i}", Role.member)[0].id for i in range(USERS)] if owned else [None]
        session.commit()
        per_owner = JOBS // len(owners)
        session.add_all(new_job(SPEC, owner_id=owner) for owner in owners for _ in range(per_owner))
        session.commit()
    return engine, sessions


def claims_per_second(sessions: Any, claims: int) -> tuple[float, int]:
    """Claims a second, and how many owners the claimed jobs belong to."""
    from store.tables import Job

    start = time.perf_counter()
    claimed = []
    for _ in range(claims):
        attempt = claim_next(sessions, "bench", running_cap=RUNNING_CAP)
        assert attempt is not None
        claimed.append(attempt.job_id)
    rate = claims / (time.perf_counter() - start)
    with sessions() as session:
        owners = {job.owner_id for job in session.scalars(select(Job).where(Job.id.in_(claimed)))}
    return rate, len(owners)


def claims_table(database: str, url_of: Any, claims: int, rounds: int) -> list[str]:
    rates: dict[bool, list[float]] = {True: [], False: []}
    spread = 0
    for _ in range(rounds):
        for owned in (True, False):  # interleaved
            engine, sessions = fill(url_of(), owned)
            rate, owners = claims_per_second(sessions, claims)
            rates[owned].append(rate)
            spread = owners if owned else spread
            engine.dispose()
    fair, plain = statistics.median(rates[True]), statistics.median(rates[False])
    return [f"| claims, {database}: {USERS} users x {JOBS // USERS} queued, fair share | {fair:.0f}/s "
            f"(owners of the first {claims} claimed: {spread}) | {plain:.0f}/s | {fair / plain:.2f} |"]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def request_latencies(requests: int, rounds: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/jobs.db", "DATA_DIR": tmp, "API_KEY": "bench-key",
               "QUOTA_SUBMISSIONS_PER_MINUTE": "1000000", "EXECUTOR_ALIVE_SECONDS": "1000000"}  # fmt: skip
        api = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(port),
                                "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True)  # fmt: skip
        try:
            wait_until_up(url, api)
            engine = make_engine(env["DATABASE_URL"])
            with make_session_factory(engine)() as session:  # a live worker: a queued job's read takes every check
                register_executor(session, "bench", 0.0, 64.0, SPEC_VERSION)
                session.commit()
            engine.dispose()
            with httpx.Client(base_url=url, timeout=30) as client:
                admin = {"Authorization": "Bearer bench-key"}
                token = client.post("/users", json={"name": "mia"}, headers=admin).json()["token"]
                who = {"API_KEY": admin, "a user's token": {"Authorization": f"Bearer {token}"}}
                times: dict[tuple[str, str], list[float]] = {(w, op): [] for w in who for op in ("POST", "GET")}
                for _ in range(rounds):
                    for name, headers in who.items():  # interleaved
                        for _ in range(requests // rounds):
                            start = time.perf_counter()
                            job = client.post("/jobs", json={"model": "numpy_mlp"}, headers=headers)
                            times[(name, "POST")].append(time.perf_counter() - start)
                            start = time.perf_counter()
                            client.get(f"/jobs/{job.json()['id']}", headers=headers)
                            times[(name, "GET")].append(time.perf_counter() - start)
                            # not measured: the queue stays as short as QUOTA_QUEUED_JOBS (50) keeps a member's
                            client.post(f"/jobs/{job.json()['id']}/cancel", headers=headers)
        finally:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait()
    lines = []
    for op, path in (("POST", "POST /jobs"), ("GET", "GET /jobs/{id}")):
        for q in (0.5, 0.99):
            key, user = percentile(times[("API_KEY", op)], q), percentile(times[("a user's token", op)], q)
            lines.append(f"| {path} p{round(q * 100)}, SQLite, one client | {user * 1000:.1f} ms (a user's token) | "
                         f"{key * 1000:.1f} ms (API_KEY) | {user / key:.2f} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=300)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["claims", "requests"], help="one half of the table")
    args = parser.parse_args()
    rows = []
    if args.only != "requests":
        with tempfile.TemporaryDirectory() as tmp:
            counter = iter(range(1_000_000))
            rows += claims_table("SQLite", lambda: f"sqlite:///{tmp}/claims-{next(counter)}.db", args.claims,
                                 args.rounds)  # fmt: skip
        server = start_postgres(free_port())
        try:
            rows += claims_table("PostgreSQL", server.new_database_url, args.claims, args.rounds)
        finally:
            server.stop()
    if args.only != "claims":
        rows += request_latencies(args.requests, args.rounds)
    print(f"CPU: {cpu_model()}; medians of {args.rounds} rounds\n")
    print("| what | with users | reference | ratio |\n|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
