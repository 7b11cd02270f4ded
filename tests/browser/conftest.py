"""The browser layer: one headless Chromium (Debian's, driven by Playwright) for the whole session."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from harness.browser import browser_session


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    yield from browser_session()
