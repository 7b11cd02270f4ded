"""One bfloat16 verdict per CPU model, kept: the first process on a CPU model measures, every later
one (any worker, any restart, the API) reads what it found, so all of them decide alike."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.tables import CpuPrecisionVerdict, utcnow
from store.unit_of_work import unit_of_work


@dataclass(frozen=True)
class Verdict:
    bf16: bool
    speedup: float | None
    measured_by: str
    kept: bool  # read from the store (measured earlier), not measured now


def _stored(sessions: sessionmaker[Session], cpu_model: str) -> Verdict | None:
    with sessions() as session:
        row = session.get(CpuPrecisionVerdict, cpu_model)
        return None if row is None else Verdict(row.bf16, row.speedup, row.measured_by, kept=True)


def kept_verdict(
    sessions: sessionmaker[Session], cpu_model: str, measure: Callable[[], tuple[bool, float | None]], who: str
) -> Verdict:
    """The stored verdict of `cpu_model`; without one, `measure()` (outside any transaction: it takes
    seconds) and store it. Two processes measuring at once: the first to store wins, and both return it."""
    if (stored := _stored(sessions, cpu_model)) is not None:
        return stored
    bf16, speedup = measure()
    try:
        with unit_of_work(sessions) as session:
            session.add(CpuPrecisionVerdict(cpu_model=cpu_model, bf16=bf16, speedup=speedup, measured_by=who,
                                            measured_at=utcnow()))  # fmt: skip
    except IntegrityError:
        pass  # another process stored its verdict first: that one counts
    stored = _stored(sessions, cpu_model)
    assert stored is not None
    return Verdict(stored.bf16, stored.speedup, stored.measured_by, kept=stored.measured_by != who)
