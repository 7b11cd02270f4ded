"""The supervisor's restarts (issue 40, finding 9): a child that crashes again at once waits longer each time, and
one that ran healthily a while before it ended waits the first delay again (the backoff never reset: after a few
crashes, every restart waited 60 s)."""

import logging
import sys
from pathlib import Path

import pytest

from harness.processes import stop_processes
from harness.waiting import wait_until
from supervision.group import Child

# exits at once but on its third run, which lasts 1.5 s (healthy, at healthy_seconds=1) before it exits
SCRIPT = """
import pathlib, sys, time
runs = pathlib.Path(sys.argv[1])
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
if len(runs.read_text()) == 3:
    time.sleep(1.5)
sys.exit(1)
"""


def test_the_restart_delay_doubles_then_resets_after_a_healthy_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runs = tmp_path / "runs"
    child = Child("crasher", [sys.executable, "-c", SCRIPT, str(runs)], restart=True, healthy_seconds=1.0)
    caplog.set_level(logging.WARNING, logger="supervision")
    child.start()

    def looked_at_four_ends() -> bool:  # what the supervisor's loop does at each poll
        child.restart_when_due()
        return len(caplog.records) >= 4

    try:
        wait_until(looked_at_four_ends, 30, "four ends of the child")
    finally:
        assert child.process is not None
        stop_processes([child.process])
    waits = [record.getMessage().rsplit("in ", 1)[1] for record in caplog.records]
    assert waits == ["1 s", "2 s", "1 s", "2 s"], waits  # the third run was healthy: back to the first delay
