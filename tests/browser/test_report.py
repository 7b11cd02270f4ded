"""The assignment report: its runs submitted (an identical finished job reused), and the page in a
real browser with finished and unfinished runs."""

import io
import re

from PIL import Image
from playwright.sync_api import Browser, expect

from harness.browser import open_page, screenshot_path
from harness.waiting import wait_for_status
from tests.conftest import Service


def test_report_reuses_identical_jobs_and_renders_finished_and_unfinished_runs(
    service: Service, browser: Browser
) -> None:
    with service.client() as client:
        earlier = client.post("/jobs", json={"model": "numpy_mlp", "name": "my own default run"}).json()["id"]
        assert wait_for_status(client, earlier, {"succeeded", "failed"})["status"] == "succeeded"

        submitted = client.post("/reports/assignment", json={"convnet_max_steps": 3, "resnet18_max_steps": 2})
        assert submitted.status_code == 200, submitted.text
        runs = {run["figure"]: run for run in submitted.json()["runs"]}
        assert list(runs) == ["1", "2", "3", "4", "5", "6", "tanh-wide", "tanh-deep", "batchnorm", "layernorm"]
        assert [run["in_report"] for run in runs.values()] == [True] * 6 + [False] * 4
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
        assert "![Figure 1](report/figure-1.png)" in markdown.text and "## Figure 4: Deep MLP" in markdown.text
        assert "## Beyond the report's figures (section 3, normalisation): figure 3's run with" in markdown.text
        assert "The report's caption: \u201cTest/train scores of a wide MLP PyTorch model." in markdown.text
        figure_2 = client.get("/reports/assignment/figures/figure-2.png")
        assert figure_2.status_code == 200 and Image.open(io.BytesIO(figure_2.content)).size == (1000, 400)
        # figure 6 waits behind figure 3's 5,000 steps: cancelled, the report says so (not "not submitted")
        cancelled = runs["6"]["job_id"]
        assert client.post(f"/jobs/{cancelled}/cancel").json()["status"] == "cancelled"

    page, requests = open_page(browser, service.url)
    page.goto(service.url + "/")
    page.click("header >> text=The report")  # linked from the service's page
    expect(page).to_have_url(service.url + "/reports/assignment")
    expect(page.locator("h1")).to_have_text("Assignment 1, the report regenerated")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(10)
    first = page.locator('#runs tr[data-figure="1"] td')
    expect(first.nth(2)).to_have_text("\u2014")  # the report's text gives no number for figure 1
    expect(page.locator('#runs tr[data-figure="2"] td').nth(2)).to_have_text("0.49")  # the report's beside ours
    expect(first.nth(3)).to_have_text(re.compile(r"^[01]\.\d{4}$"))
    expect(first.nth(7)).to_have_text("succeeded")
    expect(page.locator('#runs tr[data-figure="layernorm"] td').first).to_have_text(
        "beyond (section 3, normalisation)")  # fmt: skip
    expect(page.locator("h2").filter(has_text="Figure 3: Wide MLP")).to_have_count(1)
    expect(page.locator('#runs tr[data-figure="6"] td').nth(7)).to_have_text(re.compile(r"^cancelled, step 0 of "))
    expect(page.locator('#runs tr[data-figure="4"] td').nth(7)).to_have_text(re.compile(r"^(queued|running)"))
    for figure in ("1", "2", "5"):  # finished and unfinished runs both get their figure
        image = page.locator(f"#figure-{figure}")
        image.scroll_into_view_if_needed()
        expect(image).to_be_visible()
        expect(image).to_have_js_property("naturalWidth", 1000)  # loaded and decoded (no eval: the page's CSP)
    if path := screenshot_path("assignment-report.png"):
        page.screenshot(path=str(path), full_page=True)
    page.click('#runs tr[data-figure="6"] td a')  # the job id leads to the job's page
    expect(page).to_have_url(f"{service.url}/#job/{cancelled}")
    expect(page.locator("#job-status")).to_have_text("cancelled")
    assert not requests.foreign and not requests.refused_by_csp
