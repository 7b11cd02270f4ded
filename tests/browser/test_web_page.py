"""The web page in a real browser (Debian's Chromium via Playwright) against a real server and worker."""

import base64
import io
import json
import re
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, expect

from harness.browser import open_page, screenshot_path
from tests.conftest import Service, running_service

TINY = {"model": "torch_mlp", "hidden_units": [16], "batch_size": 20, "max_steps": 150, "log_every": 5,
        "eval_every": 50, "name": "from the page"}  # fmt: skip


def png_base64(color: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), color).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def drop_image(page: Page, name: str, color: tuple[int, int, int]) -> None:
    """A real drop event on the drop zone, carrying a PNG file."""
    data = page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            return transfer;
        }""",
        [name, png_base64(color)],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": data})


def submit(page: Page, spec: dict[str, object] | str) -> None:
    page.fill("#spec", spec if isinstance(spec, str) else json.dumps(spec))
    page.click("#submit-form button[type=submit]")


def test_submit_watch_the_curve_and_classify_a_dropped_image(browser: Browser, service: Service) -> None:
    page, requests = open_page(browser, service.url)
    page.goto(service.url + "/")
    expect(page.locator("#connection")).to_have_text("live")
    # the nine presets, then one for each kind without one (speedrun; vit, the example plugin installed here)
    expect(page.locator("#preset option")).to_have_count(11)

    submit(page, {"model": "torch_mlp", "hidden_units": []})
    expect(page.locator("#spec-error")).to_contain_text("hidden_units")

    submit(page, TINY)
    expect(page).to_have_url(re.compile(r"#job/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])
    row = page.locator(f'#jobs tbody tr[data-id="{job_id}"]')
    expect(row).to_contain_text("from the page")
    expect(page.locator("#job-title")).to_contain_text(f"Job {job_id}")
    # the curve grows while it trains, then the table and the page say it succeeded
    page.wait_for_function("() => curve.size > 0")
    expect(row.locator("td.status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    page.wait_for_function("() => curve.size === 30 && charts[1]?.data[0].length === 30")  # 150 / log_every 5
    assert page.evaluate("() => charts[1].data[2].filter((v) => v !== null).length") == 3  # test at 50, 100, 150

    drop_image(page, "red.png", (240, 20, 20))
    expect(page.locator("#predictions li")).to_have_count(1)
    shown = page.locator("#predictions li").inner_text()
    assert shown.startswith("red.png:") and shown.count("%") == 3  # three classes with probabilities
    check_the_job_page_facts_and_actions(page, service.url, job_id)
    page.goto(f"{service.url}/#job/{job_id}")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    if path := screenshot_path("web-page-job.png"):
        page.screenshot(path=str(path), full_page=True)
    assert requests.foreign == [], f"the page asked for something outside {service.url}: {requests.foreign}"
    assert requests.refused_by_csp == []  # it runs under its Content Security Policy


def check_the_job_page_facts_and_actions(page: Page, url: str, job_id: int) -> None:
    """A succeeded job's page: its outcome, the spec fields it chose (bold), its lineage and log tail, and only
    the actions that fit (no Cancel); a job started from it links back to it, and Delete asks first."""
    expect(page.locator("#job-title")).to_have_text(f"Job {job_id}: from the page · torch_mlp")
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#download")).to_be_visible()
    expect(page.locator("#delete")).to_be_visible()
    outcome = page.locator("#job-outcome")
    expect(outcome).to_contain_text("succeeded")
    accuracy = page.request.get(f"{url}/jobs/{job_id}").json()["final_metrics"]["test_accuracy"]
    expect(outcome).to_contain_text(f"{accuracy:.4f}")
    chosen = page.locator("#job-spec tr.chosen td:first-child").all_inner_texts()
    assert sorted(chosen) == sorted(["hidden_units", "batch_size", "max_steps", "log_every", "eval_every", "name"])
    assert page.locator("#job-spec tr").count() > len(chosen) + 5  # the defaults are listed too, not bold
    expect(page.locator("#job-lineage")).to_have_text("trained from scratch, its own run")
    log_tail = page.request.get(f"{url}/jobs/{job_id}/logs?tail=40").text()
    assert log_tail.strip(), "the training process printed nothing to compare with"
    expect(page.locator("#job-log-text")).to_have_text(log_tail, timeout=10_000)

    child = page.request.post(f"{url}/jobs", data={**TINY, "name": "fine-tuned", "init_from_job": job_id}).json()["id"]
    page.goto(f"{url}/#job/{child}")
    expect(page.locator("#job-title")).to_have_text(f"Job {child}: fine-tuned · torch_mlp")
    expect(page.locator("#job-lineage")).to_have_text(f"started from job {job_id}")
    page.click("#job-lineage a")  # the link leads to the job it started from, and back returns
    expect(page.locator("#job-title")).to_have_text(f"Job {job_id}: from the page · torch_mlp")
    page.go_back()
    expect(page.locator("#job-title")).to_have_text(f"Job {child}: fine-tuned · torch_mlp")
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#delete")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.dismiss())  # asked, and declined: nothing deleted
    page.click("#delete")
    assert page.request.get(f"{url}/jobs/{child}").status == 200
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    expect(page.locator("#job-section")).to_be_hidden()
    assert page.request.get(f"{url}/jobs/{child}").status == 404
    expect(page.locator(f'#jobs tbody tr[data-id="{child}"]')).to_have_count(0)  # gone from the live table
    page.click(f'#jobs tbody tr[data-id="{job_id}"]')  # back to the first job for the screenshot
    expect(page.locator("#job-title")).to_contain_text(f"Job {job_id}:")
    tag_and_filter(page, url, job_id)


def tag_and_filter(page: Page, url: str, job_id: int) -> None:
    """Name and tag a run in its page; the table filtered by the tag shows it alone, then everything again."""
    other = page.request.post(f"{url}/jobs", data={**TINY, "name": "another run", "max_steps": 10}).json()["id"]
    expect(page.locator(f'#jobs tbody tr[data-id="{other}"] td.status')).to_have_text("succeeded", timeout=60_000)
    page.fill("#edit-tags", "wide, adam")
    page.fill("#edit-notes", "the first run\nfrom the page")
    page.click("#annotations button[type=submit]")
    expect(page.locator("#annotations-saved")).to_have_text("saved")
    row = page.locator(f'#jobs tbody tr[data-id="{job_id}"]')
    expect(row).to_contain_text("wide, adam")
    saved = page.request.get(f"{url}/jobs/{job_id}").json()
    assert saved["tags"] == ["wide", "adam"] and saved["notes"] == "the first run\nfrom the page"
    page.fill("#edit-tags", "Not A Tag")
    page.click("#annotations button[type=submit]")
    expect(page.locator("#annotations-error")).to_contain_text("tags")  # the API's 422, named
    page.fill("#filter-tag", "adam")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(row).to_be_visible()
    expect(page.locator("#connection")).to_contain_text("1 matching")
    page.fill("#filter-tag", "")
    page.select_option("#filter-sort", "test_accuracy")  # sorted by the API: the worse run first
    accuracies = {job: page.request.get(f"{url}/jobs/{job}").json()["final_metrics"]["test_accuracy"] for job in
                  (job_id, other)}  # fmt: skip
    in_order = [str(job) for job in sorted(accuracies, key=lambda job: (accuracies[job], -job))]
    expect(page.locator("#jobs tbody tr")).to_have_count(2)
    assert page.locator("#jobs tbody tr").evaluate_all("(rows) => rows.map((row) => row.dataset.id)") == in_order
    page.select_option("#filter-sort", "-test_accuracy")  # the better first; equal ones newest first
    best = min(accuracies, key=lambda job: (-accuracies[job], -job))
    expect(page.locator("#jobs tbody tr").first).to_have_attribute("data-id", str(best))
    page.click("#filter-clear")
    expect(page.locator(f'#jobs tbody tr[data-id="{other}"]')).to_have_count(1)
    expect(page.locator("#connection")).to_have_text("live")


def test_the_page_works_with_an_api_key(browser: Browser, tmp_path: Path, data_dir: Path, database_url: str) -> None:
    with running_service(tmp_path, data_dir, database_url, {"API_KEY": "page-key"}) as service:
        page, requests = open_page(browser, service.url)
        page.goto(service.url + "/")
        expect(page.locator("#connection")).to_contain_text("401")
        page.fill("#api-key", "page-key")
        page.dispatch_event("#api-key", "change")
        expect(page.locator("#connection")).to_have_text("live")
        submit(page, {"model": "numpy_mlp", "max_steps": 5, "name": "keyed"})
        expect(page.locator("#jobs tbody")).to_contain_text("keyed")
        assert page.evaluate("() => localStorage.getItem('apiKey')") == "page-key"
        assert requests.foreign == []


def test_the_page_cannot_be_framed_by_another_page(browser: Browser, service: Service) -> None:
    """In an invisible frame on another page, one click once cancelled a job (clickjacking); with
    `frame-ancestors 'none'` the browser shows no frame of the service at all."""
    page = browser.new_page()
    page.set_content(f'<iframe id="framed" src="{service.url}/" width="800" height="600"></iframe>')
    framed = page.frame_locator("#framed")
    page.wait_for_function("() => document.getElementById('framed').contentWindow !== null")
    frame = next(f for f in page.frames if f != page.main_frame)
    frame.wait_for_load_state()
    assert frame.url.startswith("chrome-error://"), frame.url  # the browser refused to show it
    assert framed.locator("#jobs").count() == 0
    page.close()


def test_the_job_page_shows_fired_alerts_system_metrics_and_a_preemption(
    browser: Browser, tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    """Also: an urgent job takes the job's place while it trains; the page says why it waits, then lists its two
    attempts, the first preempted for the urgent job (a link to it)."""
    spec = {
        "model": "torch_mlp",
        "hidden_units": [64],
        "batch_size": 20,
        "max_steps": 1500,
        "log_every": 10,
        "eval_every": 500,
        "alerts": [{"when": "below", "metric": "accuracy", "split": "train", "value": 2}],
    }
    settings = {"SYSTEM_METRICS_SECONDS": "0.2", "PREEMPT_MIN_RUN_SECONDS": "0"}
    with running_service(tmp_path, data_dir, database_url, settings) as service:
        service.start_worker()
        page, requests = open_page(browser, service.url)
        page.goto(service.url + "/")
        submit(page, spec)
        expect(page).to_have_url(re.compile(r"#job/\d+$"))
        # while it trains: the alert (an `alert` event) and the system samples (`system` events) arrive live
        expect(page.locator("#job-alerts li")).to_have_text(  # once a worker has it: allow for a loaded machine
            re.compile(r"^alert 0 \(below\): train accuracy .* is below 2 at step 10$"), timeout=60_000
        )
        expect(page.locator("#job-system")).to_contain_text(
            re.compile(r"memory \d+ MB, CPU \d+% of its cpus"), timeout=60_000
        )
        urgent = {"model": "numpy_mlp", "max_steps": 3000, "eval_every": 3000, "priority": 50}
        with service.client() as client:
            urgent_id = client.post("/jobs", json=urgent).json()["id"]
        expect(page.locator("#job-waiting")).to_contain_text(
            re.compile(rf"^waiting: preempted at step \d+ to make room for job {urgent_id}, priority 50"),
            timeout=60_000,
        )
        expect(page.locator("#job-status")).to_have_text("succeeded", timeout=60_000)
        expect(page.locator("#job-waiting")).to_have_text("")
        rows = page.locator("#job-attempts tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0).locator("td").last).to_have_text(f"preempted for job {urgent_id}")
        expect(rows.nth(1).locator("td").last).to_have_text("succeeded")
        expect(rows.nth(0).locator(f"a[href='#job/{urgent_id}']")).to_be_visible()
        page.wait_for_function("() => charts[2]?.data[0].length >= 1")  # the system panel has the streamed samples
        page.reload()  # and a fresh page reads them back from the API
        # the charts are drawn anew once the page has read the job back: until then there is no third chart
        page.wait_for_function("() => charts[2]?.data[0].length >= 3 && charts[2].data[1].every((v) => v > 0)")
        expect(page.locator("#job-alerts li")).to_have_count(1)
        page.click("#job-record summary")  # the reproducibility record, folded until asked for
        expect(page.locator("#job-record-text")).to_contain_text('"dataset": "cifar10"')
        expect(page.locator("#job-record-text")).to_contain_text('"precision": "float32"')
        if path := screenshot_path("web-page-alerts-and-system.png"):
            page.screenshot(path=str(path), full_page=True)
        assert requests.foreign == [] and requests.refused_by_csp == []


def test_the_new_job_form_is_made_from_each_kinds_schema_a_plugins_too(
    browser: Browser, service_without_worker: Service
) -> None:
    """The fields of the kind in the JSON (the example plugin's vit here), with their ranges and defaults; what is
    set there goes into the JSON that is submitted, what is emptied goes out of it."""
    service = service_without_worker
    page, requests = open_page(browser, service.url)
    page.goto(service.url + "/")
    page.select_option("#preset", label="vit, its defaults (cifar-jobs-vit 0.1.0)")
    page.click("#spec-fields summary")
    expect(page.locator("#kind")).to_have_value("vit")
    expect(page.locator("#kind-about")).to_contain_text("A small vision transformer")
    depth = page.locator('#fields input[name="depth"]')
    assert (depth.get_attribute("min"), depth.get_attribute("max"), depth.get_attribute("placeholder")) == (
        "1",
        "24",
        "6",
    )
    expect(page.locator("#fields label", has=page.locator('input[name="depth"]'))).to_contain_text("depth (≥ 1, ≤ 24)")
    depth.fill("2")
    depth.dispatch_event("change")
    page.select_option('#fields select[name="optimizer"]', label="sgd_momentum")
    page.fill('#fields input[name="name"]', "a ViT from the form")
    page.locator('#fields input[name="name"]').dispatch_event("change")
    tags = page.locator('#fields input[name="tags"]')
    tags.fill('["class-a"]')
    tags.dispatch_event("change")
    assert json.loads(page.input_value("#spec")) == {"model": "vit", "depth": 2, "optimizer": "sgd_momentum",
                                                      "name": "a ViT from the form", "tags": ["class-a"]}  # fmt: skip
    page.select_option('#fields select[name="optimizer"]', value="")  # back to the default: out of the JSON
    assert "optimizer" not in json.loads(page.input_value("#spec"))

    page.click("#submit-form button[type=submit]")
    expect(page).to_have_url(re.compile(r"#job/\d+$"))
    job_id = int(page.url.rsplit("/", 1)[1])
    with service.client() as client:
        job = client.get(f"/jobs/{job_id}").json()
    assert (job["model"], job["spec"]["depth"], job["spec"]["optimizer"], job["tags"]) == (
        "vit",
        2,
        "adamw",
        ["class-a"],
    )

    page.goto(service.url + "/")
    page.click("#spec-fields summary")
    page.select_option("#kind", "convnet")  # another kind: its own fields
    assert json.loads(page.input_value("#spec")) == {"model": "convnet"}
    expect(page.locator('#fields input[name="depth"]')).to_have_count(0)
    expect(page.locator('#fields input[name="learning_rate"]')).to_have_attribute("placeholder", "0.0001")
    assert requests.refused_by_csp == []


def test_the_plan_button_shows_cost_time_and_why_it_would_wait_and_queues_nothing(
    browser: Browser, tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    # a probe may take a minute on a loaded test machine (PLAN_PROBE_SECONDS, 8 by default)
    with running_service(tmp_path, data_dir, database_url, {"PLAN_PROBE_SECONDS": "60"}) as service:
        plan_in_the_page(browser, service)


def plan_in_the_page(browser: Browser, service: Service) -> None:
    page, requests = open_page(browser, service.url)
    page.goto(service.url + "/")
    page.fill("#spec", json.dumps({"model": "torch_mlp", "hidden_units": []}))
    page.click("#plan-button")
    expect(page.locator("#spec-error")).to_contain_text("hidden_units")
    expect(page.locator("#plan")).to_be_hidden()

    page.fill("#spec", json.dumps(TINY))
    page.click("#plan-button")
    lines = page.locator("#plan li")
    # 3072*16 + 16 + 16*10 + 10 parameters; 3 forwards of 20 images at 2 FLOPs a weight: 0.0059 GFLOP
    expect(lines.nth(0)).to_have_text(
        "49,338 parameters; 0.01 GFLOP a training step, 0.00 TFLOP an evaluation (3)", timeout=90_000
    )
    # 49,338 float32 weights and their gradients (SGD keeps no state): 0.38 MB; 20 images' 42 kept values: 0.003 MB
    expect(lines.nth(1)).to_contain_text("memory: 0.4 MB weights, gradients and optimizer state, 0.0 MB activations")
    expect(lines.nth(2)).to_contain_text("(a probe of 20 steps on the CPU")
    expect(lines.nth(3)).to_have_text(re.compile(r"^queue: 0 ahead"))
    expect(lines.nth(4)).to_have_text(
        "it would wait: no worker is running: start one (make serve, or python -m workers)"
    )
    expect(page.locator("#plan-button")).to_have_text("Plan")
    if path := screenshot_path("page-plan.png"):
        page.screenshot(path=str(path), full_page=True)
    with service.client() as client:
        assert client.get("/jobs").json()["count"] == 0
    assert not requests.foreign and not requests.refused_by_csp
