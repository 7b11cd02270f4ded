"""How the benchmarks measure training: the service's own code (`run_job`, an in-memory reporter,
on the CPU), each measurement in a new Python process as the worker runs each job in its own child,
so no measurement inherits another's threads, memory or library state."""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from models.kinds import parse_spec
from models.run import run_job
from models.training.reporting import InMemoryReporter
from models.training.results import DataSource

P = ParamSpec("P")
R = TypeVar("R")


def in_fresh_process(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`function(*args, **kwargs)` in a spawned process (a module-level function, picklable arguments)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args, **kwargs).result()


def train_on_cpu(spec: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """Train `spec` on the CPU through `run_job`; the job's metrics (speeds, accuracy, precision)."""
    return run_job(parse_spec({**spec, "device": "cpu"}), InMemoryReporter(), DataSource(data_dir)).job_metrics()
