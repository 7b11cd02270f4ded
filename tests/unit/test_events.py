"""Live events in process: followers share reads, catch-ups are paged and built off the event loop;
downsampling keeps a curve's shape."""

import asyncio
import json
import threading
from typing import Any

import numpy as np
import pytest

from app.curves.downsample import Curve, downsample
from app.curves.events import JobEvents, JobsTableEvents
from app.curves.shared_poll import Pollers, SharedPoll
from app.curves.views import JobView


class CountingCurves:
    """Stands in for JobCurves: counts reads, finishes the job after `reads_to_finish` of them."""

    def __init__(self, reads_to_finish: int) -> None:
        self.reads, self.reads_to_finish = 0, reads_to_finish

    def view(self, job_id: int, with_system: bool = False, status_after: Any = None) -> JobView:
        self.reads += 1
        done = self.reads >= self.reads_to_finish
        steps = np.arange(1, self.reads + 1, dtype=np.int64)
        curve = Curve(steps, np.zeros(len(steps), bool), np.ones(len(steps)), np.zeros(len(steps)))
        return JobView(job_id, "succeeded" if done else "running", self.reads, 10, None, None, 1, None, None,
                       curve, self.reads)  # fmt: skip


def decoded(event: dict[str, Any] | bytes) -> tuple[str, dict[str, Any]]:
    """(name, data) of an event as JobEvents yields it: a dict, or a server-sent event already encoded."""
    if isinstance(event, dict):
        return event["event"], json.loads(event["data"])
    lines = event.decode().split("\r\n")
    name = next(line.split(": ", 1)[1] for line in lines if line.startswith("event: "))
    return name, json.loads("".join(line.split(": ", 1)[1] for line in lines if line.startswith("data: ")))


def test_many_followers_share_one_read_per_interval() -> None:
    curves = CountingCurves(reads_to_finish=5)
    events = JobEvents(curves, interval_seconds=0.01)  # type: ignore[arg-type]

    async def follow() -> list[int]:
        sent = [decoded(x) async for x in events.stream(7, None)]
        return [p["step"] for name, data in sent if name == "points" for p in data["points"]]

    async def main() -> list[list[int]]:
        return await asyncio.gather(*(follow() for _ in range(50)))

    results = asyncio.run(main())
    assert curves.reads == 5  # not 50 x 5
    assert all(r == [1, 2, 3, 4, 5] for r in results)


class FinishedCurves:
    """A finished job with a long curve (a catch-up of many points events)."""

    def __init__(self, points: int) -> None:
        steps = np.arange(1, points + 1)
        self.curve = Curve(steps, np.zeros(points, bool), np.ones(points), np.zeros(points))

    def view(self, job_id: int, with_system: bool = False, status_after: Any = None) -> JobView:
        last = int(self.curve.step[-1])
        return JobView(job_id, "succeeded", last, last, None, None, 1, None, {}, self.curve, last)


def test_catch_ups_are_built_off_the_event_loop_once_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 streams catching up on a 101,000-point job once built every event on the event loop, and every
    other request of the process waited seconds: each page is now serialised once, in a worker thread,
    for every client; a client resuming mid-page gets that page's rest built for it alone."""
    import app.curves.events as events_module

    built_on: list[int] = []
    build = events_module._points_event

    def recording(view: JobView, chunk: np.ndarray) -> bytes:
        built_on.append(threading.get_ident())
        return build(view, chunk)

    monkeypatch.setattr(events_module, "_points_event", recording)
    events = JobEvents(FinishedCurves(101_000), interval_seconds=0.01)  # type: ignore[arg-type]

    async def catch_up(last_event_id: int | None) -> list[tuple[str, dict[str, Any]]]:
        return [decoded(event) async for event in events.stream(1, last_event_id)]

    async def twenty_at_once() -> tuple[int, list[list[tuple[str, dict[str, Any]]]]]:
        return threading.get_ident(), await asyncio.gather(*(catch_up(None) for _ in range(20)))

    loop_thread, everyone = asyncio.run(twenty_at_once())
    for sent in everyone:
        pages = [data["points"] for name, data in sent if name == "points"]
        assert len(pages) == 21 and all(len(page) <= 5000 for page in pages)  # paged
        assert [p["step"] for page in pages for p in page] == list(range(1, 101_001)) and sent[-1][0] == "end"
    assert len(built_on) == 21 and loop_thread not in built_on  # once per page, each in a worker thread
    resumed = asyncio.run(catch_up(7_500))  # mid-page: its rest, then the pages everyone shares
    steps = [p["step"] for name, data in resumed if name == "points" for p in data["points"]]
    assert steps == list(range(7_501, 101_001)) and len(built_on) == 22


def test_downsampling_keeps_shape_first_last_and_best() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    steps = np.repeat(np.arange(1, n // 2 + 1), 2)
    is_test = np.tile([False, True], n // 2)
    loss = np.exp(-steps / 20_000) + rng.normal(0, 0.01, n)
    accuracy = 1 - loss / 2
    loss[31_337] = 9.0  # a spike
    accuracy[77_777] = 0.999  # the best test accuracy (index 77_777 is a test point)
    curve = Curve(steps.astype(np.int64), is_test, loss, accuracy)
    kept = downsample(curve, 500)
    assert len(kept) <= 500
    assert list(kept) == sorted(kept)
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    assert {train[0], train[-1], test[0], test[-1], 77_777, 31_337} <= set(kept.tolist())
    short = Curve(steps[:100].astype(np.int64), is_test[:100], loss[:100], accuracy[:100])
    assert list(downsample(short, 500)) == list(range(100))  # within budget: whole


def test_the_table_stream_says_when_a_row_is_gone() -> None:
    """A deleted job (or one pushed out by newer ones) leaves every open table: `gone` with its id."""
    reads = iter(
        [[{"id": 2, "status": "running"}, {"id": 1, "status": "succeeded"}], [{"id": 1, "status": "succeeded"}]]
    )
    table = JobsTableEvents(lambda: next(reads, [{"id": 1, "status": "succeeded"}]), interval_seconds=0.01)

    async def first_two() -> list[tuple[str, dict[str, Any]]]:
        events = table.stream(idle_seconds=1)
        got = [decoded(await anext(events)), decoded(await anext(events))]
        await events.aclose()  # type: ignore[attr-defined]  # an async generator: its poller stops with it
        return got

    assert asyncio.run(first_two()) == [
        ("jobs", {"jobs": [{"id": 2, "status": "running"}, {"id": 1, "status": "succeeded"}]}),
        ("gone", {"id": 2}),
    ]


class SlowCurves(CountingCurves):
    """A read that takes a while: the follower leaves (its poller is cancelled) while the read runs."""

    def __init__(self) -> None:
        super().__init__(reads_to_finish=1000)
        self.reading, self.reads_ended = threading.Event(), 0

    def view(self, job_id: int, with_system: bool = False, status_after: Any = None) -> JobView:
        if self.reads:  # the first read answers at once; the second is the one in flight at the stop
            self.reading.set()
            threading.Event().wait(0.3)
        answer = super().view(job_id, with_system, status_after)
        self.reads_ended += 1
        return answer


def test_closing_waits_for_the_reads_of_pollers_cancelled_mid_read() -> None:
    """The API disposes its engine after closing the events: a read still in its thread would keep a
    connection that is then never closed."""
    curves = SlowCurves()
    events = JobEvents(curves, interval_seconds=0.01)  # type: ignore[arg-type]

    async def leave_mid_read_then_close() -> int:
        stream = events.stream(7, None)
        await anext(stream)  # the first view; the poller goes on to its second read
        await asyncio.to_thread(curves.reading.wait, 10)
        await stream.aclose()  # type: ignore[attr-defined]  # the last follower leaves: its poller is cancelled mid-read
        await events.close()
        return curves.reads_ended

    assert asyncio.run(leave_mid_read_then_close()) == 2


def test_a_catch_up_from_cached_pages_lets_the_loops_other_work_run_between_its_pages() -> None:
    """A page from the cache is sent without the stream ever waiting, so a catch-up once ran through all its
    pages in one turn of the event loop, and every other request of the process waited for the whole curve
    (the loop watch found 20 catch-ups holding the loop 130-220 ms at a time)."""
    events = JobEvents(FinishedCurves(101_000), interval_seconds=0.01)  # type: ignore[arg-type]
    sent: list[int] = []  # the catch-up's points events so far
    seen_by_the_other_task: list[int] = []

    async def catch_up() -> None:
        async for event in events.stream(1, None):
            if decoded(event)[0] == "points":
                sent.append(1)

    async def other_work() -> None:  # a poller's request: it only needs the loop for a moment, again and again
        while len(sent) < 21:
            seen_by_the_other_task.append(len(sent))
            await asyncio.sleep(0)

    async def main() -> None:
        await catch_up()  # the first builds every page (in worker threads) and keeps them
        sent.clear()
        await asyncio.gather(catch_up(), other_work())

    asyncio.run(main())
    assert len(sent) == 21
    # the other task ran between the pages, not only before the first and after the last
    assert len(set(seen_by_the_other_task)) >= 20, sorted(set(seen_by_the_other_task))


def test_the_table_poller_survives_a_failed_read() -> None:
    """Issue 40, finding 9: one failed read ended the table's poller, and every open table froze until its idle
    timeout."""
    answers: list[Any] = [[{"id": 1, "status": "running"}], OSError("database is locked"),
                          [{"id": 1, "status": "succeeded"}]]  # fmt: skip

    def read() -> list[dict[str, Any]]:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    table = JobsTableEvents(read, interval_seconds=0.01)

    async def first_two() -> list[tuple[str, dict[str, Any]]]:
        events = table.stream(idle_seconds=5)
        got = [decoded(await anext(events)), decoded(await anext(events))]
        await events.aclose()  # type: ignore[attr-defined]
        return got

    assert asyncio.run(first_two()) == [
        ("jobs", {"jobs": [{"id": 1, "status": "running"}]}),
        ("job", {"id": 1, "status": "succeeded"}),  # after the failed read
    ]


class PreemptedOnce:
    """A running job whose second read finds it preempted (back in the queue), then claimed again and finished."""

    def __init__(self) -> None:
        self.reads = 0

    def view(self, job_id: int, with_system: bool = False, status_after: Any = None) -> JobView:
        self.reads += 1
        curve = Curve(np.arange(1, 2), np.zeros(1, bool), np.ones(1), np.zeros(1))
        moves: tuple[dict[str, Any], ...] = ()
        status = "running"
        if self.reads == 2:
            preempted = {"preempted": True, "attempt": 1, "step": 40, "job_id": job_id}
            moves = ({"status": "queued", "attempt": 1}, preempted, {"status": "running", "attempt": 2})
        elif self.reads >= 3:
            status, moves = "succeeded", ({"status": "succeeded", "attempt": 2},)
        return JobView(job_id, status, 1, 10, None, None, 2, None, None, curve, 1, status_changes=moves,
                       status_cursor=self.reads)  # fmt: skip


def test_a_preemption_is_told_as_its_own_event_between_the_moves_around_it() -> None:
    events = JobEvents(PreemptedOnce(), interval_seconds=0.01)  # type: ignore[arg-type]

    async def follow() -> list[tuple[str, dict[str, Any]]]:
        return [decoded(x) async for x in events.stream(7, None)]

    told = [(name, data) for name, data in asyncio.run(follow()) if name in ("status", "preempted")]
    assert [name if name == "preempted" else data["status"] for name, data in told] == [
        "running", "queued", "preempted", "running", "succeeded"
    ]  # fmt: skip
    assert told[2][1] == {"attempt": 1, "step": 40}


def test_a_follower_cancelled_as_its_idle_wait_ends_leaves_the_lock_to_whoever_holds_it() -> None:
    """A stream closed (the browser left) just as its idle wait timed out: with `asyncio.wait_for`, the wait ran in
    an inner task, and the follower left its `async with lock` block before that task had the lock back,
    releasing a lock it did not hold ("Lock is not acquired" in the API's log; then the inner task took the lock
    for good). The follower must end only once it holds the lock again, and then let it go."""
    pollers = Pollers()
    poll: SharedPoll[int] = SharedPoll(pollers, lambda: 1, interval=1000)

    async def scenario() -> tuple[bool, bool]:
        seen: list[int] = []

        async def follow() -> None:
            async for value, _version in poll.follow(idle_seconds=0.05):
                seen.append(value)

        follower = asyncio.create_task(follow())
        while not seen:
            await asyncio.sleep(0.01)
        await poll.lock.acquire()  # someone else holds it as the follower's idle wait times out
        await asyncio.sleep(0.1)
        follower.cancel()
        await asyncio.sleep(0.05)
        ended_without_the_lock = follower.done()
        poll.lock.release()
        await asyncio.gather(follower, return_exceptions=True)
        await pollers.close()
        return ended_without_the_lock, poll.lock.locked()

    ended_without_the_lock, still_locked = asyncio.run(scenario())
    assert not ended_without_the_lock and not still_locked
