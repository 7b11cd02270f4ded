"""Swagger UI as a person sees it: a real Chromium against a real server, nothing from the internet."""

import json
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Locator, Page, expect

from harness.browser import open_page, screenshot_path
from tests.conftest import Service, running_service


def operation(page: Page, tag: str, operation_id: str) -> Locator:
    return page.locator(f"#operations-{tag}-{operation_id}")


def try_it_out(block: Locator) -> None:
    block.locator(".opblock-summary").first.click()
    block.get_by_role("button", name="Try it out").click()


def execute(block: Locator) -> tuple[str, dict[str, Any]]:
    """Press Execute; the live response's status code and JSON body, as the page shows them."""
    block.get_by_role("button", name="Execute").click()
    live = block.locator(".live-responses-table tbody .response")
    expect(live).to_be_visible()
    status = live.locator(".response-col_status").inner_text().strip()
    body = live.locator(".response-col_description pre.microlight").first.inner_text()
    return status, json.loads(body)


def test_swagger_ui_renders_and_runs_a_job_from_the_page(browser: Browser, service_without_worker: Service) -> None:
    """Open /docs, expand POST /jobs, Try it out, Execute the default example, then GET the job the same way."""
    url = service_without_worker.url
    with service_without_worker.client() as client:
        operations = sum(len(methods) for methods in client.get("/openapi.json").json()["paths"].values())
    page, requests = open_page(browser, url)
    page.goto(f"{url}/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("CIFAR-10 training jobs")
    expect(page.locator(".opblock")).to_have_count(operations)
    assert "Unable to render this definition" not in page.content()

    submit = operation(page, "jobs", "submit_job_jobs_post")
    try_it_out(submit)
    body_editor = submit.locator("textarea.body-param__text")
    expect(body_editor).to_have_value(re.compile(r'"model":\s*"torch_mlp"'))
    if path := screenshot_path("docs-post-jobs.png"):
        submit.scroll_into_view_if_needed()
        page.screenshot(path=str(path), full_page=False)
    status, job = execute(submit)
    assert status == "201", job
    assert job["status"] == "queued" and job["spec"]["model"] == "torch_mlp"

    read = operation(page, "jobs", "get_job_jobs__job_id__get")
    try_it_out(read)
    read.locator('tr[data-param-name="job_id"] input').fill(str(job["id"]))
    status, shown = execute(read)
    assert status == "200", shown
    assert shown["id"] == job["id"] and shown["status"] == "queued"

    assert requests.foreign == [], f"the page asked for something outside {url}: {requests.foreign}"
    assert requests.refused_by_csp == []  # its one inline script runs under the CSP, by its hash
    assert any(u.endswith("/swagger-ui-bundle.js") for u in requests.requested)


def test_swagger_uis_authorize_button_takes_a_users_token(
    browser: Browser, tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    with running_service(tmp_path, data_dir, database_url, {"API_KEY": "bootstrap"}) as service:
        with service.client() as client:
            made = client.post("/users", json={"name": "mia"}, headers={"Authorization": "Bearer bootstrap"})
            token = made.json()["token"]
        page, requests = open_page(browser, service.url)
        page.goto(f"{service.url}/docs")
        me = operation(page, "users", "me_users_me_get")
        try_it_out(me)
        status, _ = execute(me)
        assert status == "401"
        page.locator(".swagger-ui .auth-wrapper .authorize").click()
        page.locator(".swagger-ui .modal-ux input[type=text]").fill(token)
        page.locator(".swagger-ui .modal-ux button.modal-btn.authorize").click()
        page.locator(".swagger-ui .modal-ux button.btn-done").click()
        me.get_by_role("button", name="Clear").click()  # the 401 shown goes: the next answer is the new one
        expect(me.locator(".live-responses-table")).to_have_count(0)
        status, shown = execute(me)
        assert status == "200" and shown == {"id": 1, "name": "mia", "role": "member"}
        assert requests.foreign == [] and requests.refused_by_csp == []
