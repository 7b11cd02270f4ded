"""Riding out database hiccups: a locked SQLite file, a restarting PostgreSQL server, a full disk.

Transient errors are retried with backoff up to a deadline, so a worker and its training process
outlive an outage instead of dying (and, under `make serve`, instead of taking the API down)."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

from store.health import database_problem

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError)  # locked, disconnected, disk I/O
OUTAGE_DEADLINE_SECONDS = 600.0


def retrying(action: Callable[[], T], what: str, deadline_seconds: float = OUTAGE_DEADLINE_SECONDS) -> T:
    """`action()`, retried on transient database errors with backoff (0.5 s doubling to 10 s) until it
    succeeds or `deadline_seconds` passed (then the last error is raised)."""
    wait, give_up_at = 0.5, time.monotonic() + deadline_seconds
    while True:
        try:
            return action()
        except TRANSIENT as exc:
            if time.monotonic() + wait > give_up_at:
                raise
            problem = database_problem(exc) or "unavailable"
            log.warning("%s: database %s (%s); retrying in %.1f s", what, problem, type(exc).__name__, wait)
            time.sleep(wait)
            wait = min(10.0, wait * 2)
