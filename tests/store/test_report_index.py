"""The report's runs found by their indexed training hashes, in process."""

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import app.reports.runs as assignment_report
from app.main import create_app
from app.settings import ApiSettings
from specs import JobSpec, parse_job_spec
from store.jobs import new_job
from tests.conftest import local_client


def test_the_report_finds_its_runs_by_index_not_by_reading_every_job(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3,000 jobs the report once parsed all their specs (6 ms -> 300 ms per page, 11 requests a page)."""
    with sessions() as session:
        session.add_all(new_job(parse_job_spec({"model": "torch_mlp", "seed": seed})) for seed in range(300))
        earlier = new_job(parse_job_spec({"model": "numpy_mlp", "name": "stored before the hashes existed"}))
        earlier.training_sha256 = earlier.training_sha256_any_steps = None  # as migration 0010 left old jobs
        session.add(earlier)
        session.commit()
        earlier_id = earlier.id
    parsed: list[dict[str, Any]] = []
    real_parse = parse_job_spec

    def counting(spec: dict[str, Any]) -> JobSpec:
        parsed.append(spec)
        return real_parse(spec)

    monkeypatch.setattr(assignment_report, "parse_job_spec", counting)
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        parsed.clear()  # the start-up fill parsed the one job without hashes; the report parses no job's spec
        submitted = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2})
        page = client.get("/reports/assignment")
    assert submitted.status_code == 200 and page.status_code == 200
    runs = {run["figure"]: run for run in submitted.json()["runs"]}
    assert runs["1"]["job_id"] == earlier_id and runs["1"]["reused"]  # filled in at start-up, then found
    assert len(parsed) <= 3 * len(runs)  # the report's own runs only, not the 301 jobs


def test_a_cancelled_run_is_shown_as_cancelled_and_submitted_again(tmp_path: Path, database_url: str) -> None:
    """The report once showed a submitted-then-cancelled run as "not submitted"; a new submission still runs it
    again rather than reusing the cancelled job."""
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        first = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2}).json()
        cancelled = next(run["job_id"] for run in first["runs"] if run["figure"] == "2")
        assert client.post(f"/jobs/{cancelled}/cancel").json()["status"] == "cancelled"
        shown = client.get("/reports/assignment").text
        assert f'<a href="/#job/{cancelled}">{cancelled}</a>' in shown and "cancelled, step 0 of 1,400" in shown
        again = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2}).json()
        rerun = next(run for run in again["runs"] if run["figure"] == "2")
        assert not rerun["reused"] and rerun["job_id"] != cancelled
        assert f'<a href="/#job/{rerun["job_id"]}">' in client.get("/reports/assignment").text  # queued beats cancelled
