"""Riding out database hiccups: a locked SQLite file, a restarting PostgreSQL server, a full disk.

Transient errors are retried with backoff up to a deadline, so a worker and its training process
outlive an outage instead of dying (and, under `make serve`, instead of taking the API down)."""

import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_before_delay

from store.errors import ArtifactStoreUnavailable
from store.health import database_problem

log = logging.getLogger(__name__)
T = TypeVar("T")
# the database locked, disconnected or failing its disk, and the object store (ARTIFACT_STORE) unanswering
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, ArtifactStoreUnavailable)
OUTAGE_DEADLINE_SECONDS = 600.0
FIRST_WAIT_SECONDS, LONGEST_WAIT_SECONDS = 0.5, 10.0


def backoff_seconds(failures: int) -> float:
    """The one backoff of a database outage: the wait after `failures` failures in a row (0.5 s, doubling to 10)."""
    return min(LONGEST_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2.0 ** (max(1, failures) - 1))


def retrying(action: Callable[[], T], what: str, deadline_seconds: float = OUTAGE_DEADLINE_SECONDS) -> T:
    """`action()`, retried on transient database errors with `backoff_seconds` until it succeeds, or until the
    next wait would pass `deadline_seconds` (then the last error is raised)."""

    def tell(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        problem = database_problem(exc) if isinstance(exc, Exception) else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s: database %s (%s); retrying in %.1f s", what, problem or "unavailable",
                    type(exc).__name__, wait)  # fmt: skip

    return Retrying(
        retry=retry_if_exception_type(TRANSIENT),
        wait=lambda state: backoff_seconds(state.attempt_number),
        stop=stop_before_delay(deadline_seconds),
        before_sleep=tell,
        reraise=True,
    )(action)
