"""A real headless browser for the tests: Debian's `chromium`, driven by Playwright, downloading nothing.

Every request the page makes is logged; one to anywhere but the service under test is aborted and
recorded, so a test can assert that the page needs nothing from the internet."""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, Route, sync_playwright

CHROMIUM_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system Chromium (installed by `make test`); never a browser build Playwright would download."""
    configured = os.environ.get("CHROMIUM")
    found = configured or next((p for name in CHROMIUM_NAMES if (p := shutil.which(name))), None)
    if not found:
        raise RuntimeError("no chromium on PATH: `make browser` (or apt-get install chromium) installs Debian's")
    return found


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        # root in a container: no sandbox; /dev/shm may be small
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    )


def browser_session() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class RequestLog:
    """The URLs a page asked for; `foreign` holds those outside the allowed origin (aborted)."""

    allowed_origin: str
    requested: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    refused_by_csp: list[str] = field(default_factory=list)  # console reports of what the page's CSP blocked

    def route(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if url == self.allowed_origin or url.startswith(self.allowed_origin + "/") or url.startswith("data:"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()


def open_page(browser: Browser, origin: str) -> tuple[Page, RequestLog]:
    """A fresh page whose requests are confined to `origin` and logged."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(20_000)
    log = RequestLog(origin)
    page.route("**/*", log.route)
    page.on("console", lambda message: _note_csp(log, message.text))
    return page, log


def _note_csp(log: RequestLog, text: str) -> None:
    if "Content Security Policy" in text:
        log.refused_by_csp.append(text)


def screenshot_path(name: str) -> Path | None:
    """Where to save a screenshot when SCREENSHOT_DIR is set (`SCREENSHOT_DIR=shots make test-sqlite`)."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / name
