"""Watching training: live events, downsampled and CSV curves, plots, through a real server and worker."""

import asyncio
import csv
import io
import json
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from app.services.curves import JobView
from app.services.downsample import Curve, downsample
from app.services.events import JobEvents
from tests.conftest import Service, running_service, wait_for_status

STEADY_JOB = {"model": "torch_mlp", "hidden_units": [32], "batch_size": 20, "max_steps": 400, "log_every": 5,
              "eval_every": 50, "device": "cpu"}  # fmt: skip


def read_events(
    client: httpx.Client, job_id: int, last_event_id: int | None = None, stop_after_points: int | None = None
) -> list[tuple[str, int, dict[str, Any]]]:
    """(event, id, data) of the job's event stream, until it ends or `stop_after_points` points events came."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    events: list[tuple[str, int, dict[str, Any]]] = []
    name, event_id, data = "message", -1, ""
    with client.stream("GET", f"/jobs/{job_id}/events", headers=headers, timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("id:"):
                event_id = int(line.split(":", 1)[1])
            elif line.startswith("data:"):
                data += line.split(":", 1)[1].strip()
            elif line == "" and data:
                events.append((name, event_id, json.loads(data)))
                name, data = "message", ""
                points_events = sum(1 for e in events if e[0] == "points")
                if stop_after_points is not None and points_events >= stop_after_points:
                    break
    return events


def points_of(events: list[tuple[str, int, dict[str, Any]]]) -> list[tuple[int, str]]:
    return [(p["step"], p["split"]) for name, _, data in events if name == "points" for p in data["points"]]


def test_events_follow_a_job_to_its_end_and_a_reconnect_misses_nothing(service: Service) -> None:
    with service.client() as client:
        job = client.post("/jobs", json=STEADY_JOB).json()
        first = read_events(client, job["id"], stop_after_points=2)  # then the client drops off mid-run
        last_id = first[-1][1]
        rest = read_events(client, job["id"], last_event_id=last_id)
        stored = client.get(f"/jobs/{job['id']}/metrics").json()["points"]
    assert rest[-1][0] == "end" and rest[-1][2]["status"] == "succeeded"
    assert [e[2]["status"] for e in rest if e[0] == "status"][-1] == "succeeded"
    received = points_of(first) + points_of(rest)
    assert max(Counter(received).values()) == 1, "a point came twice"
    assert sorted(received) == sorted((p["step"], p["split"]) for p in stored), "a point is missing"
    assert any(e[0] == "progress" for e in first + rest)
    ids = [e[1] for e in first + rest]
    assert ids == sorted(ids)  # the cursor only moves forward


def test_events_of_a_finished_job_replay_the_curve_and_end(service: Service) -> None:
    with service.client() as client:
        job = client.post("/jobs", json={**STEADY_JOB, "max_steps": 40}).json()
        wait_for_status(client, job["id"], {"succeeded"})
        events = read_events(client, job["id"])
        assert [e[0] for e in events][0] == "status" and events[-1][0] == "end"
        assert len(points_of(events)) == len(client.get(f"/jobs/{job['id']}/metrics").json()["points"])
        after = read_events(client, job["id"], last_event_id=40)
        assert points_of(after) == [] and after[-1][0] == "end"
        assert client.get("/jobs/999/events").status_code == 404


class CountingCurves:
    """Stands in for JobCurves: counts reads, finishes the job after `reads_to_finish` of them."""

    def __init__(self, reads_to_finish: int) -> None:
        self.reads, self.reads_to_finish = 0, reads_to_finish

    def view(self, job_id: int) -> JobView:
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

    def view(self, job_id: int) -> JobView:
        last = int(self.curve.step[-1])
        return JobView(job_id, "succeeded", last, last, None, None, 1, None, {}, self.curve, last)


def test_catch_ups_are_built_off_the_event_loop_once_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 streams catching up on a 101,000-point job once built every event on the event loop, and every
    other request of the process waited seconds: each page is now serialised once, in a worker thread,
    for every client; a client resuming mid-page gets that page's rest built for it alone."""
    import app.services.events as events_module

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


def test_metrics_downsampled_csv_and_plots_through_the_api(service: Service) -> None:
    with service.client() as client:
        job = client.post("/jobs", json={**STEADY_JOB, "max_steps": 300, "log_every": 1, "eval_every": 10}).json()
        running_plot = None
        while running_plot is None:
            now = client.get(f"/jobs/{job['id']}").json()
            if now["status"] == "running" and now["progress"]["step"] > 0:
                running_plot = client.get(f"/jobs/{job['id']}/plot.png?width=640&height=320")
            assert now["status"] in ("queued", "running"), now
        done = wait_for_status(client, job["id"], {"succeeded"})
        full = client.get(f"/jobs/{job['id']}/metrics").json()["points"]
        small = client.get(f"/jobs/{job['id']}/metrics?max_points=60").json()["points"]
        as_csv = client.get(f"/jobs/{job['id']}/metrics.csv")
        also_csv = client.get(f"/jobs/{job['id']}/metrics?format=csv")
        png = client.get(f"/jobs/{job['id']}/plot.png?width=800&height=300")
        svg = client.get(f"/jobs/{job['id']}/plot.svg")
        other = client.post("/jobs", json={**STEADY_JOB, "max_steps": 20, "name": "short one"}).json()
        wait_for_status(client, other["id"], {"succeeded"})
        compared = client.get(f"/plots/compare.png?jobs={job['id']},{other['id']}&metric=loss&split=train")
        bad = client.get("/plots/compare.png?jobs=1,x")
    assert len(full) == 300 + 30
    assert len(small) <= 60 and all(p in full for p in small)
    train = [p for p in full if p["split"] == "train"]
    test = [p for p in full if p["split"] == "test"]
    best = max(test, key=lambda p: p["accuracy"])
    for needed in (train[0], train[-1], test[0], test[-1], best):
        assert needed in small
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert as_csv.headers["content-type"].startswith("text/csv") and also_csv.text == as_csv.text
    assert [(int(r["step"]), r["split"], float(r["loss"]), float(r["accuracy"])) for r in rows] == [
        (p["step"], p["split"], p["loss"], p["accuracy"]) for p in full
    ]
    assert running_plot.status_code == 200 and Image.open(io.BytesIO(running_plot.content)).size == (640, 320)
    image = Image.open(io.BytesIO(png.content))
    assert png.headers["content-type"] == "image/png" and image.size == (800, 300)
    assert len(set(np.asarray(image.convert("L")).ravel().tolist())) > 10  # something is drawn
    root = ET.fromstring(svg.content)
    assert svg.headers["content-type"] == "image/svg+xml" and root.tag.endswith("svg")
    assert f"job {done['id']}" in svg.text and "final test accuracy" in svg.text
    assert compared.status_code == 200 and Image.open(io.BytesIO(compared.content)).size == (900, 500)
    assert bad.status_code == 422 and bad.json()["message"].startswith("jobs:")


@pytest.mark.parametrize("path", ["/jobs/999/metrics.csv", "/jobs/999/plot.png", "/jobs/999/metrics?max_points=50"])
def test_unknown_jobs_are_404(service_without_worker: Service, path: str) -> None:
    with service_without_worker.client() as client:
        assert client.get(path).status_code == 404


def test_event_streams_are_capped_per_process_and_end_when_idle(
    tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """A thousand idle streams once exhausted the API's file descriptors: a process keeps at most
    EVENTS_MAX_STREAMS open (503 with Retry-After past it), and a stream with nothing to send for
    EVENTS_IDLE_SECONDS ends (its client reconnects). Run past both, with short settings."""
    settings = {"EVENTS_MAX_STREAMS": "2", "EVENTS_IDLE_SECONDS": "1", "EVENTS_PING_SECONDS": "0.3"}
    with running_service(tmp_path, data_dir, database_url, settings) as service, service.client() as client:
        job = client.post("/jobs", json=STEADY_JOB).json()  # no worker: it stays queued, its stream idle
        with client.stream("GET", f"/jobs/{job['id']}/events") as first, client.stream("GET", "/events") as table:
            assert first.status_code == table.status_code == 200
            third = client.get(f"/jobs/{job['id']}/events")
            assert third.status_code == 503 and third.headers["retry-after"] == "5"
            assert "2 event streams open, its limit" in third.json()["message"]
            started = time.monotonic()
            first_lines, table_lines = list(first.iter_lines()), list(table.iter_lines())  # both end by themselves
            assert time.monotonic() - started < 10
        assert "event: status" in first_lines and "event: jobs" in table_lines
        assert any(line.startswith(": ping") for line in first_lines + table_lines)  # pings do not count as events
        with client.stream("GET", f"/jobs/{job['id']}/events") as again:  # the slots were given back
            assert again.status_code == 200
