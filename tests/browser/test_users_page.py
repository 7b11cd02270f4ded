"""The page with several users, in a real browser: signing in with a token and out, the owner column, the
"mine only" switch, only the actions the user may take, and an admin's Users view (add, role, disable, reset a
lost token, remove)."""

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from harness.browser import open_page, screenshot_path
from tests.browser.test_page_layout import overflowing
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
        expect(page.locator("#users-link")).to_be_hidden()  # only admins manage users

        def status_with(token: str) -> int:
            return http.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code

        sign_in(page, "bootstrap")  # an admin: the Users view
        expect(page.locator("#users-link")).to_be_visible()
        page.click("#users-link")
        rows = page.locator("#users tbody tr")
        expect(rows).to_have_count(3)
        page.fill("#user-name", "lea")
        page.click("#user-form button[type=submit]")
        expect(page.locator("#users-token-who")).to_contain_text("lea's new token")
        first = page.locator("#users-token-value").inner_text()
        assert first.startswith("cjt_") and status_with(first) == 200
        expect(rows).to_have_count(4)
        ids = {name: int(http.get("/users", headers=admin).json()["data"][i]["id"])
               for i, name in enumerate(("mia", "max", "vic", "lea"))}  # fmt: skip
        row = {name: page.locator(f'#users tbody tr[data-id="{ids[name]}"]') for name in ids}
        row["vic"].get_by_label("role of vic").select_option("member")
        expect(page.locator("#users-saved")).to_have_text("vic: member, enabled")  # the API's answer
        assert http.get("/users", headers=admin).json()["data"][2]["role"] == "member"
        row["max"].get_by_role("button", name="Disable").click()
        expect(row["max"].locator("td:nth-child(4)")).to_have_text("disabled")
        assert status_with(tokens["max"]) == 401
        row["max"].get_by_role("button", name="Enable").click()
        expect(row["max"].locator("td:nth-child(4)")).to_have_text("enabled")
        assert status_with(tokens["max"]) == 200
        row["lea"].get_by_role("button", name="Reset token").click()
        expect(page.locator("#users-token-who")).to_contain_text("1 other revoked")
        fresh = page.locator("#users-token-value").inner_text()
        assert fresh != first and status_with(fresh) == 200 and status_with(first) == 401
        page.once("dialog", lambda dialog: dialog.accept())
        row["mia"].get_by_role("button", name="Remove").click()
        expect(row["mia"].locator("td:nth-child(2)")).to_have_text(f"mia (removed #{ids['mia']})")
        expect(row["mia"].locator("td:nth-child(4)")).to_have_text("removed")
        expect(row["mia"].get_by_role("button")).to_have_count(0)
        assert status_with(tokens["mia"]) == 401
        assert overflowing(page) == []
        if path := screenshot_path("users-admin.png"):
            page.screenshot(path=str(path), full_page=True)
        service.start_worker("w1")  # issue 46: the Executors view lists it, alive, and what it runs
        page.click("#executors-link")
        expect(page.locator('#executors tbody tr[data-name="w1"] td:nth-child(6)')).to_have_text(
            "alive", timeout=60_000
        )
        expect(page.locator("#executors-count")).to_have_text("1 alive of 1")
        assert overflowing(page) == []
        page.click("#sign-out")
        expect(page.locator("#whoami")).to_have_text("not signed in")
        expect(page.locator("#connection")).to_contain_text("401")
        assert page.evaluate("() => localStorage.getItem('apiKey')") is None
        assert requests.foreign == [] and requests.refused_by_csp == []
