"""Shared fixtures: tiny data sets, a real SQLite file, a real API server and worker processes.

The suite comes in layers, one folder each (`make test` runs them; each test is marked with its layer):
- `unit/`: no database, no processes of ours: learning code, plots, schedules, parsers, CLI-free logic;
- `store/`: in process, on a real database: the store, the API through Starlette's TestClient, the
  worker's and the sweep driver's passes; run on SQLite and on PostgreSQL;
- `service/`: real processes (uvicorn, workers, `make serve`, the CLI) on SQLite; the few marked
  `postgresql` (claims under SKIP LOCKED, restarts, resumes) run on PostgreSQL too;
- `browser/`: pages in a real Chromium; `ray/`: a real Ray cluster (`make test-ray`).
"""

import os
from typing import Any

# Tiny models on tiny data: one math thread per process keeps the API, the workers and pytest from
# oversubscribing the cores (set before anything imports torch or NumPy's BLAS).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from harness.loop_stalls import report_loop_stalls
from harness.net import free_port, wait_until_up
from harness.postgres import PostgresServer, start_postgres
from harness.processes import stop_processes
from harness.s3_server import S3Server, s3_server
from models.artifacts import ModelArtifact, pack_model
from models.data.preprocessing import fit_normalization
from models.kinds.numpy_mlp import build
from models.training.precision import CPU_BF16_ENV, bf16_is_fast_on_cpu
from specs import parse_job_spec
from store.attempts import claim_next, succeed_attempt
from store.engine import make_engine, make_session_factory
from store.jobs import create_job
from store.migrate import upgrade
from store.unit_of_work import transact, unit_of_work
from tests.datagen import CLASSES, write_cifar_batches

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _store_tests_apis_are_handed_the_cpu_verdict(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store test's API runs in this process: it is handed this CPU's bfloat16 verdict in CPU_BF16, as the
    service tests' processes are (`running_service`), instead of measuring it in a subprocess at its first
    prediction (`app.predict.service._CpuVerdict`: 30-46 s of a test's time, once per pytest process, against
    about 3 s for `bf16_is_fast_on_cpu` here). The tests of keeping the verdict unset it where they need to."""
    if request.node.get_closest_marker("store") and CPU_BF16_ENV not in os.environ:
        monkeypatch.setenv(CPU_BF16_ENV, "1" if bf16_is_fast_on_cpu() else "0")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose `cifar10` holds tiny pickle batches."""
    folder = tmp_path / "data"
    write_cifar_batches(folder / "cifar10")
    return folder


TEST_DATABASE = os.environ.get("TEST_DATABASE", "sqlite")  # or "postgresql": the same suite on PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | None]:
    if TEST_DATABASE != "postgresql":
        yield None
        return
    server = start_postgres(free_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A SeaweedFS S3 server on loopback for this test process; each test keeps its objects under its own prefix."""
    with s3_server() as server:
        yield server


@pytest.fixture
def empty_database_url(tmp_path: Path, postgres_server: PostgresServer | None) -> str:
    """A fresh, empty database for one test: a SQLite file, or a new database on the test PostgreSQL server."""
    if postgres_server is not None:
        return postgres_server.new_database_url()
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer | None) -> str:
    """A database migrated once per test process; each test's `database_url` is a copy of it, cheaper than
    migrating a fresh one. PostgreSQL: the database's name; SQLite: the file."""
    if postgres_server is not None:
        url = postgres_server.new_database_url()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('template') / 'jobs.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()  # nobody connected: PostgreSQL copies only a template no session is using
    return url.rsplit("/", 1)[1] if postgres_server is not None else url.removeprefix("sqlite:///")


@pytest.fixture
def database_url(tmp_path: Path, postgres_server: PostgresServer | None, migrated_template: str) -> str:
    """A fresh database for one test, at the current schema: a SQLite file, or a new database on the test
    PostgreSQL server, each copied from the migrated template (`empty_database_url` for an empty one)."""
    if postgres_server is not None:
        return postgres_server.new_database_url(template=migrated_template)
    shutil.copyfile(migrated_template, tmp_path / "jobs.db")
    return f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@dataclass
class Service:
    url: str
    env: dict[str, str]
    log_dir: Path
    processes: list[subprocess.Popen[bytes]]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def start_worker(self, name: str = "w") -> subprocess.Popen[bytes]:
        return self.start_process(f"worker-{name}", "workers", "--name", name)

    def start_sweep_driver(self, name: str = "d") -> subprocess.Popen[bytes]:
        return self.start_process(f"sweep-driver-{name}", "app.sweeps.driver_process")

    def start_process(self, log_name: str, module: str, *args: str) -> subprocess.Popen[bytes]:
        """`python -m module args` with the service's environment, in its own session, logging to log_name.log."""
        with (self.log_dir / f"{log_name}.log").open("ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.log_dir.glob("*.log"))


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop one process we started (and its children), by process group id."""
    stop_processes([proc], timeout)


@contextmanager
def running_service(
    folder: Path, data_dir: Path, database_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[Service]:
    """A real uvicorn server on a free loopback port, over the given database."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "DOWNLOAD_DATASETS": "false",
        "FLUSH_SECONDS": "0.2",
        "WORKER_POLL_SECONDS": "0.1",
        "HEARTBEAT_SECONDS": "1",
        "CHECKPOINT_MIN_SECONDS": "0",  # every checkpoint_every steps, as the tests' specs say
        # the workers' start-up probe, answered once for the whole session instead of once per worker
        CPU_BF16_ENV: "1" if bf16_is_fast_on_cpu() else "0",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    log_dir = folder / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "api.log").open("ab") as api_log:
        api = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=api_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(f"http://127.0.0.1:{port}", env, log_dir, [api])
    try:
        wait_until_up(service.url, api)
        yield service
    finally:
        stop_processes(list(reversed(service.processes)))
        report_loop_stalls(sorted(log_dir.glob("api*.log")))


@pytest.fixture
def service_without_worker(tmp_path: Path, data_dir: Path, database_url: str) -> Iterator[Service]:
    with running_service(tmp_path, data_dir, database_url) as service:
        yield service


@pytest.fixture
def service(service_without_worker: Service) -> Service:
    """The real server plus one real worker process."""
    service_without_worker.start_worker()
    return service_without_worker


def local_client(app: Any, **options: Any) -> TestClient:
    """Starlette's TestClient as a client on this machine (loopback address, Host 127.0.0.1), which is
    who the service answers without an API key."""
    return TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000), **options)


def start_serve(
    folder: Path, data_dir: Path, database_url: str, extra_env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m app.serve` (API and worker) in its own process group, logging to folder/serve.log;
    its URL once it answers. Stop it with stop_process."""
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "DATABASE_URL": database_url, "PORT": str(port),
           "DOWNLOAD_DATASETS": "false", "API_WORKERS": "1", "CHECKPOINT_MIN_SECONDS": "0", **extra_env}  # fmt: skip
    with (folder / "serve.log").open("ab") as log:
        serve = subprocess.Popen([sys.executable, "-m", "app.serve"], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, serve, timeout=90)  # the API starts beside four other processes importing torch
    except Exception:
        stop_process(serve)
        raise
    return serve, url


def with_secret_files(environment: dict[str, str], folder: Path, secrets: dict[str, str]) -> dict[str, str]:
    """A service's environment from docker-compose.yml, run outside its container: each `/run/secrets/NAME`
    it names becomes a file in `folder` holding `secrets[NAME]`."""
    folder.mkdir(parents=True, exist_ok=True)
    out = dict(environment)
    for key, value in environment.items():
        if value.startswith("/run/secrets/"):
            name = value.removeprefix("/run/secrets/")
            (folder / name).write_text(secrets[name] + "\n")
            out[key] = str(folder / name)
    return out


def store_succeeded_job(sessions: sessionmaker[Session], test_accuracy: float) -> int:
    """A succeeded numpy_mlp job with a real (untrained) model, written through the store: for what needs
    a model without training one."""
    spec = parse_job_spec({"model": "numpy_mlp", "hidden_units": [8]})
    weights = build(spec, 10).state_dict()  # type: ignore[arg-type]
    images = np.random.default_rng(0).integers(0, 256, (20, 3, 32, 32), dtype=np.uint8)
    norm = fit_normalization("assignment", images)
    model = pack_model(ModelArtifact(spec.model_dump(mode="json"), CLASSES, norm, dict(weights)))
    with sessions() as session:
        create_job(session, spec)
        session.commit()
        attempt = claim_next(sessions, "w")
    assert attempt is not None
    assert transact(
        sessions, lambda session: succeed_attempt(session, attempt, {"test_accuracy": test_accuracy}, 1400, model)
    )
    return attempt.job_id


def new_job(sessions: sessionmaker[Session]) -> int:
    """A queued torch_mlp job with the assignment's defaults, through the store; its id."""
    with unit_of_work(sessions) as session:
        return create_job(session, parse_job_spec({"model": "torch_mlp"}))[0].id


# Long enough to kill, stop or lose mid-run; short enough to finish in seconds. A NumPy MLP (at about the pace of
# a torch MLP of batch 20): its worker and the forked child need no torch, whose import costs each worker seconds
# of CPU (how a worker meets kills, stops and outages does not depend on the kind it trains).
LONG_JOB = {"model": "numpy_mlp", "hidden_units": [64], "batch_size": 100, "max_steps": 1500, "log_every": 10,
            "eval_every": 1000, "checkpoint_every": 100, "device": "cpu"}  # fmt: skip


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def assert_curve_complete(client: httpx.Client, job_id: int, max_steps: int, log_every: int) -> None:
    points = client.get(f"/jobs/{job_id}/metrics").json()["points"]
    pairs = Counter((p["split"], p["step"]) for p in points)
    assert max(pairs.values()) == 1, "a (split, step) point appears twice"
    assert sorted(s for sp, s in pairs if sp == "train") == list(range(log_every, max_steps + 1, log_every))


LAYERS = ("unit", "store", "service", "browser", "ray")
# pytest-timeout's limit per layer, far past each layer's slowest test (`--durations` in make test's output): a test
# that hangs fails with every thread's stack instead of holding the run; a test may set its own (@timeout)
LAYER_TIMEOUT_SECONDS = {"unit": 120, "store": 120, "service": 600, "browser": 300, "ray": 900}
PROCESS_FIXTURES = {"service", "service_without_worker", "pinging_service", "sweep_service", "trained", "cluster",
                    "hooked_service", "fuzzed_service", "planning_service"}  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its layer (its folder), and keep the layers honest: a unit test touches no
    database, and neither a unit nor a store test starts servers or workers."""
    for item in items:
        layer = Path(str(item.path)).parent.name
        if layer not in LAYERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of the layers' folders: {', '.join(LAYERS)}")
        item.add_marker(getattr(pytest.mark, layer))
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LAYER_TIMEOUT_SECONDS[layer]))
        fixtures = set(getattr(item, "fixturenames", ()))
        if layer in ("unit", "store") and fixtures & PROCESS_FIXTURES:
            raise pytest.UsageError(
                f"{item.nodeid}: a {layer} test starts no processes ({fixtures & PROCESS_FIXTURES})"
            )
        if layer == "unit" and "database_url" in fixtures:
            raise pytest.UsageError(f"{item.nodeid}: a unit test touches no database: it belongs in store/")


# A small MLP's training options (no model kind): fine-tuning tests start from it and train on.
TINY_TRAINING: dict[str, Any] = {
    "hidden_units": [32],
    "batch_size": 50,
    "preprocessing": "standardize",
    "max_steps": 40,
    "eval_every": 20,
    "log_every": 10,
}
