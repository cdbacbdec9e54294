"""Fixtures for the headless-Chromium tests (loaded by tests/conftest.py through ``pytest_plugins``).

``chromium`` is one browser for the whole run; ``screen_page`` opens pages signed in as a
commander that record every request, console message and page error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from browser import BrowserUnavailable, launch_chromium, open_page, start_playwright

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".var" / "test-artifacts"


@pytest.fixture(scope="session")
def vendored_assets() -> Path:
    """The vendored Leaflet, VectorGrid and font (``onemap vendor``; quick when already in place)."""
    from host.vendor import VendorError, vendor_install

    try:
        return vendor_install().vendor_dir
    except VendorError as exc:
        pytest.fail(f"the screen's vendored assets are missing and cannot be fetched: {exc}")


@pytest.fixture(scope="module")
def playwright_driver():
    """Playwright's driver for one test module.

    Its sync API keeps an asyncio loop running on the test's thread while it is up, and Django
    refuses ORM calls on such a thread; nothing runs concurrently here, so the module allows them
    (DJANGO_ALLOW_ASYNC_UNSAFE) and the driver stops with the module, before other tests run.
    """
    try:
        driver = start_playwright()
    except BrowserUnavailable as exc:
        pytest.skip(str(exc))
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield driver
    driver.stop()
    if before is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="module")
def chromium(playwright_driver):
    """Debian's headless Chromium, one per test module."""
    browser = launch_chromium(playwright_driver)
    yield browser
    browser.close()


@pytest.fixture
def screen_page(chromium, live_server, accounts, vendored_assets):
    """Open a page on the live server as a commander: ``screen_page(path, width=, height=, scale=, account=, base_url=)``."""
    contexts = []

    def open_(path: str = "/screen/", *, width=1920, height=1080, scale=1, account="commander", base_url=None,
              wait_until="load"):
        credentials = accounts[account].auth if account else None
        page, log = open_page(
            chromium, base_url=base_url or live_server, credentials=credentials, width=width, height=height, scale=scale,
        )
        contexts.append(page.context)
        if path is not None:
            page.goto(path, wait_until=wait_until)
        return page, log

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where screenshots go: ``.var/test-artifacts/`` (``ONEMAP_TEST_ARTIFACTS`` overrides)."""
    folder = Path(os.environ.get("ONEMAP_TEST_ARTIFACTS") or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
