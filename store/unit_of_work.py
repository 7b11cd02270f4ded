"""The unit of work: one transaction per request, per worker pass step, per delivery.

Store functions take a `Session` and never commit or roll back: whoever starts the work (a route through
`app/http/deps.py::UnitOfWorkDep`, an executor's or the deliverer's step through `unit_of_work`) owns the
transaction, and everything it changes commits once, when its block ends, or not at all, when it raises.
Rows are not kept past their session: what outlives it is an id or a dataclass.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
AFTER_COMMIT = "after_commit"


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back when it raises; then what
    `after_commit` registered runs."""
    with sessions() as session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()
        for then in session.info.pop(AFTER_COMMIT, ()):
            then()


def after_commit(session: Session, then: Callable[[], None]) -> None:
    """Run `then` once the unit of work `session` belongs to has committed (a cache to forget what it changed)."""
    session.info.setdefault(AFTER_COMMIT, []).append(then)


def transact(sessions: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """`work` in a unit of work of its own; what it returns (for a call that is one transaction by itself, and
    may be retried whole)."""
    with unit_of_work(sessions) as session:
        return work(session)
