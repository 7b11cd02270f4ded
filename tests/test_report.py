"""The assignment report: its runs submitted (an identical finished job reused), and the page in a
real browser with finished and unfinished runs."""

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.services import assignment_report
from app.settings import ApiSettings
from harness.browser import browser_session, open_page, screenshot_path
from models.kinds import JobSpec, parse_spec
from store.jobs import new_job
from tests.conftest import Service, local_client, wait_for_status


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from browser_session()


def test_report_reuses_identical_jobs_and_renders_finished_and_unfinished_runs(
    service: Service, browser: Browser
) -> None:
    with service.client() as client:
        earlier = client.post("/jobs", json={"model": "numpy_mlp", "name": "my own default run"}).json()["id"]
        assert wait_for_status(client, earlier, {"succeeded", "failed"})["status"] == "succeeded"

        submitted = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2})
        assert submitted.status_code == 200, submitted.text
        runs = {run["figure"]: run for run in submitted.json()["runs"]}
        assert list(runs) == ["1", "2", "3a", "3b", "3c", "3d", "4a", "4b", "5", "6"]
        assert runs["1"]["job_id"] == earlier and runs["1"]["reused"]  # the same spec bar its name
        assert not any(run["reused"] for figure, run in runs.items() if figure != "1")
        assert "3 of the report's 5,000 steps" in runs["5"]["note"]
        assert "from scratch" in runs["6"]["note"]  # no ImageNet weights file in the test's DATA_DIR
        again = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2}).json()
        assert [run["job_id"] for run in again["runs"]] == [run["job_id"] for run in runs.values()]
        assert all(run["reused"] for run in again["runs"])
        job = client.get(f"/jobs/{runs['2']['job_id']}").json()
        assert job["spec"]["hidden_units"] == [100] and job["name"].startswith("report figure 2")

        assert wait_for_status(client, runs["2"]["job_id"], {"succeeded", "failed"})["status"] == "succeeded"
        markdown = client.get("/reports/assignment", params={"format": "md", "figure_prefix": "report/"})
        assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
        assert "![Figure 1](report/figure-1.png)" in markdown.text and "## Figure 4b:" in markdown.text
        figure_2 = client.get("/reports/assignment/figures/figure-2.png")
        assert figure_2.status_code == 200 and Image.open(io.BytesIO(figure_2.content)).size == (1000, 400)

    page, requests = open_page(browser, service.url)
    page.goto(service.url + "/reports/assignment")
    expect(page.locator("h1")).to_have_text("Assignment 1, the report regenerated")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(10)
    first = page.locator('#runs tr[data-figure="1"] td')
    expect(first.nth(2)).to_have_text("0.48")  # the report's number beside ours
    expect(first.nth(3)).to_have_text(re.compile(r"^[01]\.\d{4}$"))
    expect(first.nth(7)).to_have_text("succeeded")
    expect(page.locator('#runs tr[data-figure="6"] td').nth(7)).to_have_text(re.compile(r"^(queued|running)"))
    for figure in ("1", "2", "5"):  # finished and unfinished runs both get their figure
        image = page.locator(f"#figure-{figure}")
        image.scroll_into_view_if_needed()
        expect(image).to_be_visible()
        page.wait_for_function(f"document.getElementById('figure-{figure}').naturalWidth === 1000")
    if path := screenshot_path("assignment-report.png"):
        page.screenshot(path=str(path), full_page=True)
    assert not requests.foreign and not requests.refused_by_csp


def test_the_report_finds_its_runs_by_index_not_by_reading_every_job(
    tmp_path: Path, database_url: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With 3,000 jobs the report once parsed all their specs (6 ms -> 300 ms per page, 11 requests a page)."""
    with sessions() as session:
        session.add_all(new_job(parse_spec({"model": "torch_mlp", "seed": seed})) for seed in range(300))
        earlier = new_job(parse_spec({"model": "numpy_mlp", "name": "stored before the hashes existed"}))
        earlier.training_sha256 = earlier.training_sha256_any_steps = None  # as migration 0010 left old jobs
        session.add(earlier)
        session.commit()
        earlier_id = earlier.id
    parsed: list[dict[str, Any]] = []
    real_parse = parse_spec

    def counting(spec: dict[str, Any]) -> JobSpec:
        parsed.append(spec)
        return real_parse(spec)

    monkeypatch.setattr(assignment_report, "parse_spec", counting)
    with local_client(create_app(ApiSettings(data_dir=tmp_path, database_url=database_url))) as client:
        parsed.clear()  # the start-up fill parsed the one job without hashes; the report parses no job's spec
        submitted = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2})
        page = client.get("/reports/assignment")
    assert submitted.status_code == 200 and page.status_code == 200
    runs = {run["figure"]: run for run in submitted.json()["runs"]}
    assert runs["1"]["job_id"] == earlier_id and runs["1"]["reused"]  # filled in at start-up, then found
    assert len(parsed) <= 3 * len(runs)  # the report's own runs only, not the 301 jobs
