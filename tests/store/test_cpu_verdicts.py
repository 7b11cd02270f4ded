"""One bfloat16 verdict per CPU model: measured by the first worker on it, then kept, so that restarts
and other workers on the same CPU decide alike however the timing moves (the probe's timing is mocked)."""

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from store.cpu_verdicts import kept_verdict
from store.tables import CpuPrecisionVerdict, utcnow
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


def test_a_ray_entrypoint_without_the_dispatchers_answer_uses_its_nodes_kept_verdict(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.training import precision
    from workers.run_attempt import use_kept_cpu_verdict

    url = engine.url.render_as_string(hide_password=False)
    settings = WorkerSettings.model_validate({"database_url": url, "data_dir": tmp_path})
    with sessionmaker(engine)() as session:  # the first worker on this CPU model measured it slower
        session.add(CpuPrecisionVerdict(cpu_model=CPU, bf16=False, speedup=0.9, measured_by="w", measured_at=utcnow()))
        session.commit()
    monkeypatch.setattr("workers.run_attempt.cpu_model", lambda: CPU)
    monkeypatch.setattr("workers.run_attempt.measure_in_subprocess", lambda: pytest.fail("measured again"))
    monkeypatch.delenv("CPU_BF16", raising=False)
    try:
        assert use_kept_cpu_verdict(settings) is False and precision.bf16_is_fast_on_cpu() is False
    finally:
        monkeypatch.setattr(precision, "_verdict", None)
        precision.bf16_is_fast_on_cpu.cache_clear()
