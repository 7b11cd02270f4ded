"""A process that outlasts its stop is killed, and the run says where it was (harness/processes.py)."""

import subprocess
import sys
import time

import pytest

from harness.processes import SlowStop, stop_processes

IGNORES_SIGTERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def waiting_for_nothing():
    print("ready", flush=True)
    time.sleep(600)
waiting_for_nothing()
"""


def test_a_process_that_ignores_sigterm_is_killed_with_a_warning_naming_where_it_waited() -> None:
    proc = subprocess.Popen([sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.stdout.close()
    started = time.monotonic()
    with pytest.warns(SlowStop) as warned:
        stop_processes([proc], timeout=0.5)
    assert proc.returncode == -9 and time.monotonic() - started < 30
    (warning,) = warned
    message = str(warning.message)
    assert f"(pid {proc.pid}) was still running 0.5 s after its SIGTERM" in message
    assert "waiting_for_nothing" in message  # its Python stack, read before the kill


STOPS_SLOWLY = """
import signal, sys, time
def checkpointing_at_length(*_):
    time.sleep(1.5)
    sys.exit(3)
signal.signal(signal.SIGTERM, checkpointing_at_length)
print("ready", flush=True)
time.sleep(600)
"""


def test_a_process_slow_to_stop_is_reported_with_where_it_was_and_left_to_finish() -> None:
    proc = subprocess.Popen([sys.executable, "-c", STOPS_SLOWLY], stdout=subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    proc.stdout.close()
    with pytest.warns(SlowStop) as warned:
        stop_processes([proc], timeout=30, slow_after=0.3)
    assert proc.returncode == 3  # its own exit, not a kill
    (warning,) = warned
    message = str(warning.message)
    assert f"(pid {proc.pid}) took " in message and "its threads 0.3 s after the SIGTERM" in message
    assert "checkpointing_at_length" in message


def test_a_process_that_stops_is_not_reported(recwarn: pytest.WarningsRecorder) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    stop_processes([proc], timeout=10)
    assert proc.returncode == -15 and not [w for w in recwarn if issubclass(w.category, SlowStop)]
