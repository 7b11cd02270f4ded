"""Stalls of an API process's event loop, read from its log after a test (app.runtime.loop_watch writes them):
each is reported as a `LoopStall` warning in the run's summary (pyproject.toml: not an error), with where the
loop's thread was, so that a stall seen once in a loaded CI run (a request answered 5 s late, or a connection
closed unanswered) can be read afterwards."""

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

from app.runtime.loop_watch import STALLED

MOST_LINES = 120  # of one report: the loop's innermost frames (50 lines), a line for each other thread


class LoopStall(UserWarning):
    """An API process's event loop did not run for LOOP_STALL_WARN_SECONDS or longer."""


def stall_reports(log: str) -> list[str]:
    """Each stall report in an API log: its line and the stack lines after it."""
    lines = log.splitlines()
    reports = []
    for at, line in enumerate(lines):
        if STALLED in line:
            end = at + 1
            while end < len(lines) and end - at < MOST_LINES and lines[end].startswith(("  ", "thread ")):
                end += 1
            reports.append("\n".join(lines[at:end]))
    return reports


def report_loop_stalls(logs: Iterable[Path]) -> None:
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]  # the test whose service it was (no phase)
    for path in logs:
        for report in stall_reports(path.read_text(errors="replace")):
            warnings.warn(LoopStall(f"{test} {path.name}: {report}".lstrip()), stacklevel=2)
