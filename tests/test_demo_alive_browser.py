"""A fresh demo is alive: loaded as ``onemap demo`` loads it (as of now), the big screen shows today's counters,
a filled live list, its clock in the server's time zone whatever the browser's, and a metric scale bar.

The demo goes into a database of its own (``$ONEMAP_TEST_DATABASE`` + ``_alive``), so the session's demo
at its fixed date, which other tests count on, stays as it is.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from browser import open_page, wait_for
from servers import ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TEST_DB = os.environ.get("ONEMAP_TEST_DATABASE", "onemap_test")
READY = "window.onemapScreen && window.onemapScreen.ready === true"
SERVER_ZONE = ZoneInfo("Asia/Shanghai")
BROWSER_ZONE = "America/New_York"  # twelve or thirteen hours from the server's: a wrong clock shows at once

# onemap demo's steps up to serving (host.cli.web.cmd_demo), in a process of its own over the alive database
_LOAD_AS_DEMO = """
from core.cli import setup_django
setup_django()
from host.cli.database import migrate_quietly
migrate_quietly()
from data.demo import DEFAULT_SEED
from gis.accounts import services as accounts
from host.cli.data import demo_moment, load_demo_and_cases
from host.cli.web import demo_load_reason
now = demo_moment("now")
reason = demo_load_reason(now=now)
assert reason == "no demo loaded yet", reason
load_demo_and_cases(seed=DEFAULT_SEED, progress=False, as_of=now)
assert demo_load_reason(now=now) is None  # loaded for today: the next onemap demo keeps it
accounts.user_create(username="alive_commander", role="commander", department="test")
print("TOKEN", accounts.token_create(username="alive_commander", name="alive screen")[1])
"""


@pytest.fixture(scope="module")
def alive_server(demo_db):
    from host.embedded_db import ensure_running, recreate_database

    url = recreate_database(ensure_running(log=lambda msg: None), TEST_DB + "_alive")
    env = dict(os.environ, ONEMAP_DATABASE_URL=url)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    loaded = subprocess.run([sys.executable, "-c", _LOAD_AS_DEMO], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert loaded.returncode == 0, loaded.stderr[-4000:]
    token = re.search(r"^TOKEN (\S+)$", loaded.stdout, re.M)[1]
    server = ServerProcess(root=ROOT, database_url=url, log_path=ROOT / ".var" / f"test-alive-{TEST_DB}.log")
    server.start()
    yield server.base_url, ("alive_commander", token)
    server.stop()


def test_a_fresh_demo_shows_today_a_live_list_the_server_clock_and_a_metric_scale(
        chromium, vendored_assets, alive_server, tmp_path):
    base_url, credentials = alive_server
    page, log = open_page(chromium, base_url=base_url, credentials=credentials, timezone_id=BROWSER_ZONE)
    try:
        page.goto("/screen/")
        try:
            wait_for(page, READY, timeout_s=60)
        except Exception:
            pytest.fail(f"the screen never became ready:\n{log.describe()}")
        page.wait_for_timeout(1000)  # late tiles and the density overlay, for the screenshot
        page.screenshot(path=str(tmp_path / "screen-fresh-demo.png"))
        assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == BROWSER_ZONE

        today = page.eval_on_selector_all(
            "#om-scene-safety .om-kpi",
            "nodes => nodes.map(n => [n.querySelector('.om-k').textContent, Number(n.querySelector('.om-v').textContent)])")
        assert len(today) == 3 and all(label.startswith("今日") and value > 0 for label, value in today), today

        rows = page.eval_on_selector_all("#om-event-list li", "nodes => nodes.map(n => n.textContent)")
        assert rows, "the live list is empty on open"
        assert page.evaluate("onemapScreen.incidents.size") >= len(rows) > 0

        shown = page.text_content("#om-clock")
        server_now = datetime.now(SERVER_ZONE)
        clock = datetime.strptime(shown, "%Y年%m月%d日 %H:%M:%S").replace(tzinfo=SERVER_ZONE)
        assert abs((clock - server_now).total_seconds()) < 10, (shown, server_now)

        scale = page.eval_on_selector_all(".leaflet-control-scale-line", "nodes => nodes.map(n => n.textContent)")
        assert len(scale) == 1 and re.fullmatch(r"\d+ k?m", scale[0]), scale
        assert log.errors() == [], log.describe()
    finally:
        page.context.close()
