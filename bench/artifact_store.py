"""Artifacts in the database against an S3 object store (ARTIFACT_STORE; SeaweedFS on loopback): the database's size
after the same jobs' checkpoints and models, and a ResNet18-sized checkpoint's write and read times.

    .venv/bin/python bench/artifact_store.py [--postgres] [--jobs 12] [--checkpoints 10] [--rounds 3]

Each job writes `--checkpoints` checkpoints (each replacing the last, as training does) and then its model, through
the store's own `put_artifact` in a unit of work, as the worker does; the checkpoints and models are random bytes
(weights do not compress either). The ResNet18 checkpoint (weights with Adam's two moments, 135 MB) is written and
read back (`read_artifact`: the bytes checked against their SHA-256) in interleaved rounds, database then store,
medians. PostgreSQL runs on disk with fsync off (the tests' server); SeaweedFS keeps its volumes on disk.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from bench.hostile_load import cpu_model  # noqa: E402
from harness.net import free_port  # noqa: E402
from harness.postgres import start_postgres  # noqa: E402
from harness.s3_server import S3Server, s3_server  # noqa: E402
from specs import parse_job_spec  # noqa: E402
from store.artifacts import put_artifact, read_artifact  # noqa: E402
from store.blobs import ObjectStore, delete_artifacts  # noqa: E402
from store.engine import make_engine, make_session_factory  # noqa: E402
from store.jobs import create_job  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.tables import Artifact, ArtifactKind  # noqa: E402
from store.unit_of_work import unit_of_work  # noqa: E402

MB = 1024 * 1024


@dataclass(frozen=True)
class Workload:
    jobs: int
    checkpoints: int
    checkpoint_bytes: int
    model_bytes: int
    resnet_bytes: int
    rounds: int


@dataclass(frozen=True)
class Row:
    database: str
    where: str
    database_bytes: int
    store_bytes: int
    live_bytes: int
    write_seconds: float
    read_seconds: float


def database_bytes(engine: Engine, sqlite_file: Path | None) -> int:
    """The database's size on disk: SQLite's file (its WAL folded in first), PostgreSQL's pg_database_size."""
    with engine.connect() as connection:
        if sqlite_file is not None:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            return sqlite_file.stat().st_size
        return int(connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def run_jobs(sessions: sessionmaker[Session], work: Workload) -> int:
    """The jobs' checkpoints, each replacing the last, then their models; the bytes still live at the end."""
    for _ in range(work.jobs):
        with unit_of_work(sessions) as session:
            job_id = create_job(session, parse_job_spec({"model": "torch_mlp"}))[0].id
        for step in range(1, work.checkpoints + 1):
            with unit_of_work(sessions) as session:
                put_artifact(session, job_id, ArtifactKind.checkpoint, os.urandom(work.checkpoint_bytes), step * 100)
        with unit_of_work(sessions) as session:
            put_artifact(session, job_id, ArtifactKind.model, os.urandom(work.model_bytes), work.checkpoints * 100)
            # as the job's ending does (store/transitions.py): its checkpoint goes, its model stays
            delete_artifacts(session, (Artifact.job_id == job_id) & (Artifact.kind == ArtifactKind.checkpoint.value))
    return work.jobs * work.model_bytes


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def checkpoint_times(sessions: sessionmaker[Session], job_id: int, size: int) -> tuple[float, float]:
    """Seconds to write a checkpoint of `size` bytes (its unit of work committed, the job's last one replaced, as
    training does) and to read it back checked."""
    data = os.urandom(size)

    def write() -> None:
        with unit_of_work(sessions) as session:
            put_artifact(session, job_id, ArtifactKind.checkpoint, data, 100)

    def read() -> None:
        with sessions() as session:
            found = read_artifact(session, job_id, ArtifactKind.checkpoint)
        assert found is not None and len(found[1]) == size

    return timed(write), timed(read)


def measure(name: str, url: Callable[[str], str], sqlite_dir: Path | None, s3: S3Server, work: Workload) -> list[Row]:
    """Both ways on one database server, each in a database of its own: in the rows, and in the store."""
    rows = []
    times: dict[str, list[tuple[float, float]]] = {"database": [], "object store": []}
    factories = {}
    for where in times:
        engine = make_engine(url(where))
        upgrade(engine)
        objects = ObjectStore(s3.bucket, f"bench-{name}-{os.getpid()}/", s3.client()) if where != "database" else None
        factories[where] = (engine, make_session_factory(engine, objects), objects)
    sizes = {}
    for where, (engine, sessions, objects) in factories.items():
        live = run_jobs(sessions, work)
        file = None if sqlite_dir is None else sqlite_dir / f"{where.replace(' ', '-')}.db"
        stored = sum(objects.client.head_object(Bucket=s3.bucket, Key=key)["ContentLength"]
                     for key in objects.keys()) if objects else 0  # fmt: skip
        sizes[where] = (database_bytes(engine, file), stored, live)
    resnet_jobs = {}
    for where, (_engine, sessions, _objects) in factories.items():
        with unit_of_work(sessions) as session:
            resnet_jobs[where] = create_job(session, parse_job_spec({"model": "resnet18"}))[0].id
    for _ in range(work.rounds):  # interleaved: the host's drift falls on both
        for where, (_engine, sessions, _objects) in factories.items():
            times[where].append(checkpoint_times(sessions, resnet_jobs[where], work.resnet_bytes))
    for where, (engine, _sessions, _objects) in factories.items():
        rows.append(Row(name, where, *sizes[where], statistics.median(t[0] for t in times[where]),
                        statistics.median(t[1] for t in times[where])))  # fmt: skip
        engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL server (on disk)")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--checkpoints", type=int, default=10, help="per job, each replacing the last")
    parser.add_argument("--checkpoint-mb", type=float, default=9.0, help="a small job's checkpoint")
    parser.add_argument("--model-mb", type=float, default=9.0, help="a small job's model")
    parser.add_argument("--resnet-mb", type=float, default=135.0, help="ResNet18 with Adam's state")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Workload(args.jobs, args.checkpoints, int(args.checkpoint_mb * MB), int(args.model_mb * MB),
                    int(args.resnet_mb * MB), args.rounds)  # fmt: skip
    print(f"CPU: {cpu_model()}; {work.jobs} jobs of {work.checkpoints} checkpoints ({args.checkpoint_mb:g} MB) and "
          f"a model ({args.model_mb:g} MB); a {args.resnet_mb:g} MB checkpoint in {work.rounds} interleaved rounds, "
          "medians\n")  # fmt: skip
    rows: list[Row] = []
    with s3_server() as s3, tempfile.TemporaryDirectory() as tmp:
        rows += measure("SQLite", lambda where: f"sqlite:///{tmp}/{where.replace(' ', '-')}.db", Path(tmp), s3, work)
        if args.postgres:
            server = start_postgres(free_port(), on_disk=True)
            try:
                urls = {where: server.new_database_url() for where in ("database", "object store")}
                rows += measure("PostgreSQL", lambda where: urls[where], None, s3, work)
            finally:
                server.stop()
    print("| database | artifacts in | database size | object store | live artifacts | ResNet18 checkpoint write | "
          "read (checked) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.database} | {row.where} | {row.database_bytes / MB:.1f} MB | {row.store_bytes / MB:.1f} MB | "
              f"{row.live_bytes / MB:.1f} MB | {row.write_seconds:.2f} s | {row.read_seconds:.2f} s |")  # fmt: skip
    print()
    for database in dict.fromkeys(row.database for row in rows):
        inside, outside = (next(r for r in rows if r.database == database and r.where == w)
                           for w in ("database", "object store"))  # fmt: skip
        print(f"{database}: database {inside.database_bytes / max(outside.database_bytes, 1):.0f}x smaller with the "
              f"store; checkpoint write store/database {outside.write_seconds / inside.write_seconds:.2f}, "
              f"read {outside.read_seconds / inside.read_seconds:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
