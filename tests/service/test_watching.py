"""Watching training: live events, downsampled and CSV curves, plots, through a real server and worker."""

import csv
import io
import json
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from harness.waiting import wait_for_status
from tests.conftest import Service, running_service

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
        test_csv = client.get(f"/jobs/{job['id']}/metrics.csv?split=test")
        no_format = client.get(f"/jobs/{job['id']}/metrics?format=csv")  # one CSV route: metrics.csv
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
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert [(int(r["step"]), r["split"], float(r["loss"]), float(r["accuracy"])) for r in rows] == [
        (p["step"], p["split"], p["loss"], p["accuracy"]) for p in full
    ]
    assert test_csv.text.splitlines()[1:] == [line for line in as_csv.text.splitlines()[1:] if ",test," in line]
    assert no_format.status_code == 422 and no_format.json()["message"].startswith("format: unknown query parameter")
    assert running_plot.status_code == 200 and Image.open(io.BytesIO(running_plot.content)).size == (640, 320)
    image = Image.open(io.BytesIO(png.content))
    assert png.headers["content-type"] == "image/png" and image.size == (800, 300)
    assert len(set(np.asarray(image.convert("L")).ravel().tolist())) > 10  # something is drawn
    root = ET.fromstring(svg.content)
    assert svg.headers["content-type"] == "image/svg+xml" and root.tag.endswith("svg")
    assert f"job {done['id']}" in svg.text and "final test accuracy" in svg.text
    assert compared.status_code == 200 and Image.open(io.BytesIO(compared.content)).size == (900, 500)
    assert bad.status_code == 422 and bad.json()["message"].startswith("jobs:")


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
