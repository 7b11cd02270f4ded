"""The browser layer: a headless Chromium (Debian's, driven by Playwright) per module. Not one per session:
Playwright's sync API keeps an event loop running in the thread while it is open, and a later test of
the same process calling `asyncio.run` would fail."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from harness.browser import browser_session


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from browser_session()
