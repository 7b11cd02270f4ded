"""One bfloat16 verdict per CPU model: measured by the first worker on it, then kept, so that restarts
and other workers on the same CPU decide alike however the timing moves (the probe's timing is mocked)."""

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.cpu_verdicts import kept_verdict
from workers.settings import WorkerSettings
from workers.worker import Worker

CPU = "AMD EPYC 9R14 (avx2 avx512_bf16 avx512f)"


def worker_for(engine: Engine, tmp_path: Path, name: str) -> Worker:
    url = engine.url.render_as_string(hide_password=False)
    return Worker(WorkerSettings.model_validate({"database_url": url, "data_dir": tmp_path}), name)


def test_three_restarts_of_a_worker_decide_alike_however_the_timing_moves(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timings = iter([1.30, 0.95, 1.25])  # what the probe would measure at each start, with the load moving
    measured: list[float] = []

    def probe() -> tuple[bool, float]:
        speedup = next(timings)
        measured.append(speedup)
        return speedup >= 1.1, speedup

    monkeypatch.setattr("workers.worker.cpu_model", lambda: CPU)
    monkeypatch.setattr("workers.worker.measure_in_subprocess", probe)
    verdicts = []
    for restart in range(3):
        worker = worker_for(engine, tmp_path, f"w{restart}")
        try:
            verdicts.append(worker._cpu_verdict())
        finally:
            worker.engine.dispose()
    assert verdicts == [True, True, True] and measured == [1.30]  # measured once, then read


def test_another_cpu_model_is_measured_on_its_own(sessions: sessionmaker[Session]) -> None:
    first = kept_verdict(sessions, CPU, lambda: (True, 1.4), "worker a")
    other = kept_verdict(sessions, "Intel Xeon (amx_bf16 avx512_bf16)", lambda: (False, 0.8), "worker b")
    assert (first.bf16, first.kept, other.bf16, other.kept) == (True, False, False, False)
    again = kept_verdict(sessions, CPU, lambda: pytest.fail("measured again"), "worker c")
    assert again == type(again)(True, 1.4, "worker a", kept=True)


def test_two_first_measurements_at_once_agree_on_the_one_stored_first(sessions: sessionmaker[Session]) -> None:
    """Two workers start together on a new CPU model: both measure; the second to store reads the first's."""

    def measure_while_another_stores() -> tuple[bool, float]:
        kept_verdict(sessions, CPU, lambda: (False, 1.02), "worker fast")  # stores while this one measures
        return True, 1.2

    slow = kept_verdict(sessions, CPU, measure_while_another_stores, "worker slow")
    assert (slow.bf16, slow.speedup, slow.measured_by, slow.kept) == (False, 1.02, "worker fast", True)
