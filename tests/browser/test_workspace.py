"""The page as an experiment workspace, in a real browser against a real server and worker: runs filtered and
sorted by their hyperparameters and accuracy, three runs compared (and the comparison reloaded from its URL,
downloaded as PNG and CSV), a sweep started from the page with its parallel coordinates and importances,
back and forward between views, and a drop of images of which one is too large."""

import base64
import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from harness.browser import open_page, screenshot_path
from harness.waiting import wait_for_status
from tests.conftest import Service

RUN = {"model": "torch_mlp", "batch_size": 20, "max_steps": 60, "log_every": 5, "eval_every": 20}
SPECS = (
    {**RUN, "name": "narrow sgd", "hidden_units": [16], "learning_rate": 0.001},
    {**RUN, "name": "wider adam", "hidden_units": [32], "optimizer": "adam", "learning_rate": 0.0005},
    {**RUN, "name": "narrow adam slow", "hidden_units": [16], "optimizer": "adam", "learning_rate": 0.0001},
)
FIXED_HEADERS = [
    "✓",
    "id",
    "name",
    "owner",
    "model",
    "status",
    "progress",
    "test acc.",
    "best",
    "steps/s",
    "wall",
    "tags",
]


def row_ids(page: Page) -> list[int]:
    return [int(i) for i in page.locator("#jobs tbody tr").evaluate_all("(rows) => rows.map((r) => r.dataset.id)")]


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def train_runs(client: httpx.Client) -> list[dict[str, Any]]:
    ids = [client.post("/jobs", json=spec).json()["id"] for spec in SPECS]
    return [wait_for_status(client, job_id, {"succeeded", "failed"}, timeout=120) for job_id in ids]


def test_filter_sort_compare_and_go_back_and_forth(browser: Browser, service: Service) -> None:
    with service.client() as client:
        jobs = train_runs(client)
        assert [job["status"] for job in jobs] == ["succeeded"] * 3, [job["error"] for job in jobs]
    narrow, wider, slow = (job["id"] for job in jobs)
    accuracy = {job["id"]: job["final_metrics"]["test_accuracy"] for job in jobs}
    page, requests = open_page(browser, service.url)
    errors = watch_errors(page)
    page.goto(service.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    headers = page.locator("#jobs thead th").all_inner_texts()
    assert headers[: len(FIXED_HEADERS)] == FIXED_HEADERS
    # a column for each field that differs among the runs (the name has its own), the rest summed up
    assert sorted(headers[len(FIXED_HEADERS) :]) == ["hidden_units", "learning_rate", "optimizer"], headers
    expect(page.locator(f'#jobs tbody tr[data-id="{wider}"]')).to_contain_text("[32]")
    expect(page.locator("#same-fields")).to_contain_text("The same in all 3: ")
    expect(page.locator("#same-fields")).to_contain_text("batch_size 20")

    page.click("#jobs thead >> text=learning_rate")  # sorted by the API, ascending first
    expect(page).to_have_url(re.compile(r"#runs\?sort=learning_rate$"))
    expect(page.locator("#connection")).to_contain_text("3 matching")
    assert row_ids(page) == [slow, wider, narrow]
    page.click("#jobs thead >> text=learning_rate")  # and the other way
    expect(page.locator("#jobs thead th[aria-sort=descending]")).to_contain_text("learning_rate")
    assert row_ids(page) == [narrow, wider, slow]
    page.click("#jobs thead >> text=test acc.")  # best first; equal ones newest first
    expect(page.locator("#jobs thead th[aria-sort=descending]")).to_contain_text("test acc.")
    assert row_ids(page) == sorted(accuracy, key=lambda job: (-accuracy[job], -job))

    page.fill("#filter-where", "optimizer = adam, learning_rate<0.0005")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#connection")).to_contain_text("1 matching")
    assert row_ids(page) == [slow]
    page.fill("#filter-where", "hidden_units=[16]")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#connection")).to_contain_text("2 matching")
    assert sorted(row_ids(page)) == [narrow, slow]
    with page.expect_download() as download:  # the table as filtered and sorted, spec fields and metrics as columns
        page.click("#runs-csv")
    assert download.value.suggested_filename == "jobs.csv"
    table = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [int(row["id"]) for row in table] == row_ids(page)
    assert {row["hidden_units"] for row in table} == {"[16]"}
    assert [float(row["test_accuracy"]) for row in table] == [accuracy[int(row["id"])] for row in table]
    page.fill("#filter-where", "colour=red")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#filter-error")).to_contain_text("colour")  # the API's 422, named
    filtered_url = page.url
    page.click("#filter-clear")
    expect(page.locator("#connection")).to_have_text("live")
    expect(page.locator("#jobs tbody tr")).to_have_count(3)

    for job_id in (narrow, wider, slow):
        page.check(f'#jobs tbody tr[data-id="{job_id}"] input[type=checkbox]')
    expect(page.locator("#compare-button")).to_have_text("Compare (3)")
    page.click("#compare-button")
    expect(page).to_have_url(re.compile(rf"#compare/{narrow},{wider},{slow}$"))
    check_the_comparison(page, jobs)
    page.locator("#compare-smooth").evaluate("(el) => { el.value = '0.6'; el.dispatchEvent(new Event('input')); }")
    page.uncheck("#compare-train")
    expect(page).to_have_url(re.compile(r"\?splits=test&smooth=0.6$"))
    page.reload()  # the URL is the comparison: ids and what the charts show
    check_the_comparison(page, jobs, splits=1)
    expect(page.locator("#compare-smooth")).to_have_value("0.6")
    page.check("#compare-train")
    page.wait_for_function("() => compareCharts[1].series.length === 7")
    if path := screenshot_path("workspace-compare.png"):
        page.locator("#compare-section").screenshot(path=str(path))
    check_the_downloads(page, service.url, jobs)

    page.click(f"#compare-finals a[href='#job/{wider}']")  # a run's page, then back to the comparison
    expect(page.locator("#job-title")).to_have_text(f"Job {wider}: wider adam · torch_mlp")
    expect(page.locator("#compare-section")).to_be_hidden()
    page.go_back()
    expect(page.locator("#compare-section")).to_be_visible()
    expect(page.locator("#job-section")).to_be_hidden()
    page.wait_for_function("() => compareCharts.length === 2 && compareCharts[1].series.length === 7")
    page.go_back()
    page.go_back()  # the live table, and before it the filtered one with its form filled
    expect(page).to_have_url(filtered_url)
    expect(page.locator("#filter-where")).to_have_value("colour=red")
    page.go_forward()
    page.go_forward()
    expect(page.locator("#compare-section")).to_be_visible()
    drop_three_images(page, wider)
    assert errors == [] and requests.foreign == [] and requests.refused_by_csp == []


def check_the_comparison(page: Page, jobs: list[dict[str, Any]], splits: int = 2) -> None:
    """Curves drawn for every run (train and test), the diff table listing exactly the differing fields."""
    expect(page.locator("#compare-title")).to_have_text("Comparing " + ", ".join(f"job {job['id']}" for job in jobs))
    page.wait_for_function(f"() => compareCharts.length === 2 && compareCharts[1].series.length === {1 + 3 * splits}")
    drawn = page.evaluate("() => compareCharts[1].data.slice(1).map((s) => s.filter((v) => v !== null).length)")
    assert len(drawn) == 3 * splits and all(count >= 3 for count in drawn), drawn  # 60 / 5 train, 3 test points each
    fields = page.locator("#compare-diff tr[data-field]").evaluate_all("(rows) => rows.map((r) => r.dataset.field)")
    assert sorted(fields) == ["hidden_units", "learning_rate", "optimizer"]
    optimizer_row = page.locator('#compare-diff tr[data-field="optimizer"] td').all_inner_texts()
    assert optimizer_row == [job["spec"]["optimizer"] for job in jobs]
    accuracies = page.locator('#compare-finals tr[data-field="test accuracy"] td').all_inner_texts()
    assert accuracies == [f"{job['final_metrics']['test_accuracy']:.4f}" for job in jobs]


def check_the_downloads(page: Page, url: str, jobs: list[dict[str, Any]]) -> None:
    with page.expect_download() as png:
        page.click("#compare-png-accuracy")
    image = Image.open(png.value.path())
    assert image.format == "PNG" and image.size == (900, 500)
    assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 10  # drawn, not blank
    with page.expect_download() as download:
        page.click("#compare-csv")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["job_id", "name", "step", "split", "loss", "accuracy"]
    expected = [
        [str(job["id"]), job["name"] or "", *line.split(",")]
        for job in jobs
        for line in page.request.get(f"{url}/jobs/{job['id']}/metrics.csv").text().splitlines()[1:]
    ]
    assert rows[1:] == expected


def png_base64(size: tuple[int, int], mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def drop_three_images(page: Page, job_id: int) -> None:
    """One photo over the pixel limit between two small ones: each file answered on its own."""
    page.goto(page.url.split("#")[0] + f"#job/{job_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    files = [("small-1.png", png_base64((32, 32))), ("huge.png", png_base64((6000, 5000), "L")),
             ("small-2.png", png_base64((40, 30)))]  # fmt: skip
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, b64] of files) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type: "image/png" }));
            }
            return transfer;
        }""",
        files,
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    answers = page.locator("#predictions li")
    expect(answers).to_have_count(3)
    assert answers.nth(0).inner_text().startswith("small-1.png:") and answers.nth(0).inner_text().count("%") == 3
    expect(answers.nth(1)).to_have_class("error")
    expect(answers.nth(1)).to_contain_text("huge.png: ")
    expect(answers.nth(1)).to_contain_text("resize it to at most")
    assert answers.nth(2).inner_text().startswith("small-2.png:") and answers.nth(2).inner_text().count("%") == 3


SWEEP = {
    "name": "from the page",
    "base": {
        "model": "numpy_mlp",
        "hidden_units": [8],
        "batch_size": 20,
        "max_steps": 20,
        "log_every": 5,
        "eval_every": 10,
    },  # fmt: skip
    "search": {"learning_rate": {"choices": [0.001, 0.01]}, "hidden_units": {"choices": [[8], [16]]}},
    "method": "grid",
    "max_concurrent": 2,
}


def test_a_sweep_started_from_the_page_shows_parallel_coordinates_and_importances(
    browser: Browser, service: Service
) -> None:
    service.start_sweep_driver()
    page, requests = open_page(browser, service.url)
    errors = watch_errors(page)
    page.goto(service.url + "/")
    page.click("header nav >> text=Sweeps")
    expect(page).to_have_url(re.compile(r"#sweeps$"))
    expect(page.locator("#sweeps-count")).to_have_text("0 sweeps")
    page.select_option("#sweep-preset", "Wide or deep (the report's two tuned MLPs)")
    assert json.loads(page.input_value("#sweep-spec"))["base"]["learning_rate"] == 0.0001  # the report's runs
    page.fill("#sweep-spec", json.dumps(SWEEP))
    page.click("#sweep-plan-button")
    # the plan may probe first: a few real steps in a fresh process, up to PLAN_PROBE_SECONDS (8 s)
    expect(page.locator("#sweep-plan")).to_contain_text("4 trials, 2 at a time", timeout=30_000)
    page.click("#sweep-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"#sweep/\d+$"))
    sweep_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#sweep-title")).to_have_text(f"Sweep {sweep_id}: from the page · grid")
    expect(page.locator("#sweep-cancel")).to_be_visible()
    expect(page.locator("#sweep-status")).to_have_text("finished", timeout=180_000)  # it rereads while it runs
    expect(page.locator("#sweep-cancel")).to_be_hidden()
    board = page.request.get(f"{service.url}/sweeps/{sweep_id}").json()
    assert len(board["leaderboard"]) == 4, [
        (t["number"], t["status"], t["params"], t["error"]) for t in board["leaderboard"]
    ]
    expect(page.locator("#sweep-rungs")).to_have_text("No early stopping: every trial runs to its max_steps.")
    parallel = page.locator("#parallel")
    expect(parallel).to_have_attribute("data-lines", "4")
    expect(parallel).to_have_attribute("data-axes", "learning_rate,hidden_units,test accuracy")
    drawn = page.evaluate("() => document.getElementById('parallel').toDataURL('image/png')")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(drawn.split(",", 1)[1]))).convert("RGB")).astype(int)
    blue = pixels[:, :, 2] > pixels[:, :, 0] + 40  # the trials' lines
    assert blue.sum() > 500, "no line drawn"
    try:  # fANOVA's forest, in the API's low-priority pool: beside the rest of the suite it once took over 5 s
        expect(page.locator("#importances li")).to_have_count(2, timeout=30_000)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nthe page says: {page.inner_text('#importances-note')!r}") from None
    importances = page.request.get(f"{service.url}/sweeps/{sweep_id}/importances").json()
    assert importances["trials_used"] == 4 and set(importances["importances"]) == {"learning_rate", "hidden_units"}
    assert abs(sum(importances["importances"].values()) - 1) < 1e-6
    first = max(importances["importances"], key=importances["importances"].get)
    expect(page.locator("#importances li").first).to_have_attribute("data-field", first)
    if path := screenshot_path("workspace-sweep.png"):
        page.screenshot(path=str(path), full_page=True)
    best_job = page.request.get(f"{service.url}/sweeps/{sweep_id}").json()["leaderboard"][0]["job_id"]
    page.click(f"#leaderboard a[href='#job/{best_job}']")  # a trial's page names its sweep
    expect(page.locator("#job-lineage")).to_contain_text(f"of sweep {sweep_id}")
    page.click("#job-lineage >> text=sweep")
    expect(page.locator("#sweep-title")).to_contain_text(f"Sweep {sweep_id}")
    page.click("header nav >> text=Sweeps")
    expect(page.locator(f'#sweeps tbody tr[data-id="{sweep_id}"]')).to_contain_text("finished")
    assert errors == [] and requests.foreign == [] and requests.refused_by_csp == []


def test_the_page_reads_at_phone_width_and_follows_dark_mode(browser: Browser, service: Service) -> None:
    """At 390 px nothing runs off the side (wide tables scroll in their own box); with the system in dark mode
    the page is dark; the views are reached from the keyboard alone."""
    with service.client() as client:
        job_id = client.post("/jobs", json={**RUN, "name": "on a phone"}).json()["id"]
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    errors = watch_errors(page)
    page.goto(service.url + "/#runs")
    expect(page.locator(f'#jobs tbody tr[data-id="{job_id}"]')).to_have_count(1)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    background = page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")
    red, green, blue = (int(part) for part in re.findall(r"\d+", background)[:3])
    assert red + green + blue < 150, background  # dark
    if path := screenshot_path("workspace-phone-dark.png"):
        page.screenshot(path=str(path), full_page=True)
    page.focus(f'#jobs tbody tr[data-id="{job_id}"] a')  # the id is a link: Enter opens the job
    page.keyboard.press("Enter")
    expect(page.locator("#job-title")).to_have_text(f"Job {job_id}: on a phone · torch_mlp")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.focus("header nav a[href='#sweeps']")
    page.keyboard.press("Enter")
    expect(page.locator("#sweeps-section")).to_be_visible()
    expect(page.locator("#job-section")).to_be_hidden()
    assert errors == []
    context.close()


def test_a_filtered_table_pages_through_the_api(browser: Browser, service_without_worker: Service) -> None:
    with service_without_worker.client() as client:
        ids = [
            client.post("/jobs", json={"model": "numpy_mlp", "name": f"queued {i}"}).json()["id"] for i in range(205)
        ]
    page, requests = open_page(browser, service_without_worker.url)
    page.goto(service_without_worker.url + "/#runs?name=queued&sort=id")
    expect(page.locator("#connection")).to_contain_text("205 matching, 1–200 shown")
    assert row_ids(page) == ids[:200]
    page.click("#page-next")
    expect(page).to_have_url(re.compile(r"offset=200$"))
    expect(page.locator("#connection")).to_contain_text("205 matching, 201–205 shown")
    assert row_ids(page) == ids[200:]
    expect(page.locator("#page-next")).to_be_disabled()
    page.go_back()
    expect(page.locator("#connection")).to_contain_text("1–200 shown")
    expect(page.locator("#page-prev")).to_be_disabled()
    assert requests.foreign == [] and requests.refused_by_csp == []
