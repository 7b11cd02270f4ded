"""The event loop's watch (app.runtime.loop_watch): a stall is reported while it lasts, with where the
loop's thread is, and again with its length when the loop runs on."""

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from app.runtime.loop_watch import LoopWatch
from harness.loop_stalls import LoopStall, report_loop_stalls


def a_blocking_call_on_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # as a synchronous database call or a long computation in an async route would


def test_a_stall_is_reported_with_the_loops_stack_while_it_lasts_and_its_length_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.runtime.loop_watch")

    async def main() -> list[str]:
        watch = LoopWatch(warn_after_seconds=0.3)
        watch.start()
        await asyncio.sleep(0.7)  # past the interval twice, nothing stalled: nothing reported
        quiet = [record.getMessage() for record in caplog.records]
        a_blocking_call_on_the_loop(1.2)
        await asyncio.sleep(0.2)  # the ticker runs again
        await watch.stop()
        return quiet

    quiet = asyncio.run(main())
    assert quiet == []
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages  # one report while stalled (not one per look), one after
    during, after = messages
    assert during.startswith("the event loop has not run for")
    assert "a_blocking_call_on_the_loop" in during and "time.sleep(seconds)" in during
    assert "thread loop-watch" not in during  # the watch does not report itself
    assert after.startswith("the event loop ran again after a stall of")
    stall = float(after.split("stall of ")[1].split(" s")[0])
    assert 1.0 <= stall < 2.0  # the call's 1.2 s, less the part of a tick before it began (a loaded machine: more)


def test_the_tests_read_each_stall_from_an_api_log_as_a_warning_with_its_stack(tmp_path: Path) -> None:
    log_file = tmp_path / "api.log"
    handler = logging.FileHandler(log_file)  # an API process's stderr, as the service tests keep it
    watch_log = logging.getLogger("app.runtime.loop_watch")
    watch_log.addHandler(handler)
    try:

        async def main() -> None:
            watch = LoopWatch(warn_after_seconds=0.2)
            watch.start()
            a_blocking_call_on_the_loop(0.6)
            await asyncio.sleep(0.1)
            await watch.stop()

        asyncio.run(main())
    finally:
        watch_log.removeHandler(handler)
        handler.close()
    log_file.write_text("INFO:     a request\n" + log_file.read_text() + "INFO:     another request\n")
    with pytest.warns(LoopStall) as warned:
        report_loop_stalls([log_file])
    reports = [str(w.message) for w in warned]
    test = os.environ["PYTEST_CURRENT_TEST"].split(" ")[0]
    assert all(report.startswith(f"{test} api.log: the event loop has not run for") for report in reports)
    assert any("a_blocking_call_on_the_loop" in report for report in reports)  # with its stack
    assert not any("another request" in report for report in reports)  # and nothing after it
