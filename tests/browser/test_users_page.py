"""The page with several users, in a real browser: signing in with a token and out, the owner column, the
"mine only" switch, and only the actions the user may take."""

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from harness.browser import open_page, screenshot_path
from tests.conftest import running_service

JOB = {"model": "numpy_mlp", "max_steps": 5}


def sign_in(page: Page, token: str) -> None:
    page.fill("#api-key", token)
    page.dispatch_event("#api-key", "change")


def test_sign_in_see_owners_and_only_the_actions_allowed(
    browser: Browser, tmp_path: Path, data_dir: Path, database_url: str
) -> None:
    with (
        running_service(tmp_path, data_dir, database_url, {"API_KEY": "bootstrap"}) as service,
        service.client() as http,
    ):
        admin = {"Authorization": "Bearer bootstrap"}
        tokens = {name: http.post("/users", json={"name": name, "role": role}, headers=admin).json()["token"]
                  for name, role in (("mia", "member"), ("max", "member"), ("vic", "viewer"))}  # fmt: skip
        jobs = {name: http.post("/jobs", json={**JOB, "name": f"{name}'s"},
                                headers={"Authorization": f"Bearer {tokens[name]}"}).json()["id"]
                for name in ("mia", "max")}  # fmt: skip
        page, requests = open_page(browser, service.url)
        page.goto(service.url + "/")
        expect(page.locator("#connection")).to_contain_text("401")
        expect(page.locator("#whoami")).to_have_text("not signed in")
        sign_in(page, tokens["mia"])
        expect(page.locator("#whoami")).to_have_text("mia (member)")
        expect(page.locator("#connection")).to_have_text("live")
        expect(page.locator("#jobs tbody tr")).to_have_count(2)
        owners = page.locator("#jobs tbody tr td:nth-child(4)").all_inner_texts()
        assert owners == ["max", "mia"]
        page.check("#filter-mine")
        expect(page.locator("#connection")).to_contain_text("1 matching")
        expect(page.locator("#jobs tbody tr")).to_have_count(1)
        expect(page.locator(f'#jobs tbody tr[data-id="{jobs["mia"]}"]')).to_have_count(1)
        if path := screenshot_path("users-mine.png"):
            page.screenshot(path=str(path), full_page=True)

        page.goto(f"{service.url}/#job/{jobs['max']}")  # someone else's: no cancel, no editing
        expect(page.locator("#job-title")).to_contain_text("max's")
        expect(page.locator("#job-status")).to_have_text("queued")
        expect(page.locator("#cancel")).to_be_hidden()
        expect(page.locator("#annotations")).to_be_hidden()
        page.goto(f"{service.url}/#job/{jobs['mia']}")  # her own
        expect(page.locator("#job-title")).to_contain_text("mia's")
        expect(page.locator("#cancel")).to_be_visible()
        expect(page.locator("#annotations")).to_be_visible()
        page.click("#cancel")
        expect(page.locator("#job-status")).to_have_text("cancelled")

        sign_in(page, tokens["vic"])  # a viewer: reads, and is offered no submit button
        expect(page.locator("#whoami")).to_have_text("vic (viewer)")
        expect(page.locator("#submit-form button[type=submit]")).to_be_hidden()
        page.click("#sign-out")
        expect(page.locator("#whoami")).to_have_text("not signed in")
        expect(page.locator("#connection")).to_contain_text("401")
        assert page.evaluate("() => localStorage.getItem('apiKey')") is None
        assert requests.foreign == [] and requests.refused_by_csp == []
