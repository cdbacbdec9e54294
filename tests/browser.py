"""Headless Chromium for the browser tests and the big-screen benchmark: Playwright driving Debian's chromium.

Playwright's own browser downloads are never used (the machines are offline for that):
the browser is the system ``chromium`` found on PATH, or ``ONEMAP_CHROMIUM``. Every page
opened here records each request URL, console message and page error, so a test can say
"no request left the server" and "no error was logged".
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# no sandbox: the tests run as root in a container; no background networking: Chromium
# must not phone home (it would show up as a request leaving the server)
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--mute-audio",
)
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-error"}


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright is missing; the message says what to install."""


def chromium_executable() -> str | None:
    """The system Chromium: ``ONEMAP_CHROMIUM``, else ``chromium`` (or ``chromium-browser``) on PATH."""
    explicit = os.environ.get("ONEMAP_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def start_playwright():
    """Start Playwright's driver (sync API); raises ``BrowserUnavailable`` when it or Chromium is missing."""
    executable = chromium_executable()
    if executable is None:
        raise BrowserUnavailable(
            "no chromium on PATH: apt-get install chromium (make test installs it), or set ONEMAP_CHROMIUM"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BrowserUnavailable("Playwright is not installed: pip install -e '.[test]'") from None
    return sync_playwright().start()


def launch_chromium(playwright):
    """A headless Chromium from the system package, never one Playwright would download."""
    return playwright.chromium.launch(executable_path=chromium_executable(), args=list(CHROMIUM_ARGS), headless=True)


@dataclass
class ConsoleLine:
    type: str
    text: str
    location: str


@dataclass
class PageLog:
    """Everything a page did on the network and said on its console."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    console: list[ConsoleLine] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[tuple[str, str]] = field(default_factory=list)
    bad_responses: list[tuple[int, str]] = field(default_factory=list)

    def foreign_requests(self) -> list[str]:
        """Request URLs that went anywhere but the server under test."""
        own = urlsplit(self.base_url)
        foreign = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            same_server = parts.scheme in {"http", "https", "ws", "wss"} and parts.netloc == own.netloc
            if not same_server:
                foreign.append(url)
        return foreign

    def errors(self) -> list[str]:
        """Console errors and uncaught page errors, one line each."""
        lines = [f"console: {c.text} ({c.location})" for c in self.console if c.type == "error"]
        return lines + [f"page error: {e}" for e in self.page_errors]

    def describe(self) -> str:
        lines = self.errors() + [f"foreign request: {u}" for u in self.foreign_requests()]
        return "\n".join(lines + [f"HTTP {status}: {url}" for status, url in self.bad_responses])


def open_page(
    browser,
    *,
    base_url: str,
    credentials: tuple[str, str] | None = None,
    width: int = 1920,
    height: int = 1080,
    scale: float = 1,
    timezone_id: str = "Asia/Shanghai",
):
    """A new page in its own context, signed in with HTTP Basic on ``base_url`` only; returns (page, log)."""
    options = {
        "base_url": base_url,
        "viewport": {"width": width, "height": height},
        "device_scale_factor": scale,
        "service_workers": "block",
        "locale": "zh-CN",
        "timezone_id": timezone_id,
    }
    if credentials:
        username, password = credentials
        # like a person at the browser's sign-in prompt: answered on the first 401 challenge, then sent
        # by Chromium with the requests under that path; only ever to our origin
        options["http_credentials"] = {"username": username, "password": password, "origin": base_url.rstrip("/")}
    context = browser.new_context(**options)
    page = context.new_page()
    log = PageLog(base_url=base_url)
    _record(page, log)
    return page, log


def _record(page, log: PageLog) -> None:
    """Playwright calls these on the test's own thread, between its calls into the page."""

    def on_console(message):
        where = message.location or {}
        location = f"{where.get('url', '')}:{where.get('lineNumber', '')}"
        log.console.append(ConsoleLine(message.type, message.text, location))

    page.on("request", lambda request: log.requests.append(request.url))
    page.on("console", on_console)
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.on("response", lambda r: log.bad_responses.append((r.status, r.url)) if r.status >= 400 else None)
    page.on("requestfailed", lambda request: log.failed_requests.append((request.url, request.failure or "")))


def wait_for(page, expression: str, *, timeout_s: float = 10, arg=None):
    """Wait until a JavaScript expression is truthy on the page; returns its value."""
    handle = page.wait_for_function(expression, arg=arg, timeout=timeout_s * 1000, polling=50)
    return handle.json_value()
