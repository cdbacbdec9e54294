"""The resident's page in headless Chromium on a phone-sized screen: the issue's acceptance test.

A resident reports with a photo and a GCJ-02 location (as copied from AMap): the stored point
lies within 5 m of the WGS84 truth. A second resident taps the map nearby and is shown the first
report (published by a moderator) as a likely duplicate, with its photo and words, and joins it.
The tracking page then shows the case's progress. Everything is real: the server, the database,
the browser; the photo is a JPEG made with OpenCV.
"""

from __future__ import annotations

import time

import pytest
from browser import open_page
from django.db import connection
from reporting import a_jpeg, forget_reports

from core.identity import Identity
from gis import models as m
from gis.cases import services as cases
from gis.reports import photos, services
from gis.spatial import gcj02

pytestmark = pytest.mark.slow

READY = "window.onemapReport && window.onemapReport.ready === true"
COMMANDER = Identity(role="commander", username="browser.moderator")


@pytest.fixture
def truth(demo_db):
    """A WGS84 point well inside a level-3 grid (the third by code: other tests use the first ones)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_X(p), ST_Y(p) FROM grids g, LATERAL (SELECT ST_PointOnSurface("
                       "ST_Buffer(g.geom::geography, -60)::geometry) AS p) q"
                       " WHERE g.level = 3 AND NOT ST_IsEmpty(p) ORDER BY g.code OFFSET 2 LIMIT 1")
        return cursor.fetchone()


@pytest.fixture
def codes():
    made: list[str] = []
    yield made
    forget_reports(made)


def wait_for(page, expression: str, *, timeout_s: float = 10):
    """Poll a JavaScript expression until it is truthy; its value.

    (Playwright's wait_for_function evaluates its predicate with eval, which the page's
    Content-Security-Policy forbids; page.evaluate goes through the debugger and is not.)
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{expression} still false after {timeout_s} s")
        time.sleep(0.05)


def _metres(a, b) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Distance(ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography,"
                       " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)", [*a, *b])
        return cursor.fetchone()[0]


def _phone(chromium, live_server):
    page, log = open_page(chromium, base_url=live_server, width=390, height=844, scale=2)
    page.goto("/report/")
    wait_for(page, READY, timeout_s=30)
    return page, log


def test_a_resident_reports_with_a_photo_and_a_gcj02_place_then_a_neighbour_sees_the_duplicate(
        chromium, live_server, vendored_assets, truth, codes):
    lon, lat = truth
    shifted = gcj02.to_gcj02(lon, lat)

    # -- the first resident: a place copied from AMap (GCJ-02), a category, words, a photo
    page, log = _phone(chromium, live_server)
    page.select_option("#om-category", "sanitation")
    page.fill("#om-description", "3 号楼东侧垃圾三天没清运")
    page.click("#om-paste summary")
    page.fill("#om-coords", f"{shifted[0]:.7f}, {shifted[1]:.7f}")
    page.select_option("#om-crs", "gcj02")
    page.click("#om-set")
    converted = wait_for(page, "window.onemapReport.point && window.onemapReport.point.wgs84")
    assert _metres((lon, lat), converted) < 5
    assert "GCJ-02" in page.text_content("#om-where")
    page.set_input_files("#om-photos", files=[{"name": "现场.jpg", "mimeType": "image/jpeg", "buffer": a_jpeg()}])
    page.click("#om-submit")
    receipt = wait_for(page, "window.onemapReport.submitted", timeout_s=30)
    codes.append(receipt["code"])
    assert page.text_content("#om-code") == receipt["code"]
    report = m.Report.objects.get(code=receipt["code"])
    assert _metres((lon, lat), (report.geom.x, report.geom.y)) < 5  # stored in WGS84, within 5 m of the truth
    assert report.photos == ["1.jpg"] and (photos.folder(report.code) / "1.jpg").is_file()
    assert report.case is not None and report.case.state == "reported" and report.channel == "web"
    assert log.foreign_requests() == [] and log.errors() == [], log.describe()

    # -- a moderator publishes it; a neighbour taps the map 15 m away and is shown it before reporting
    services.report_moderate(code=report.code, actor=COMMANDER, action="publish")
    page2, log2 = _phone(chromium, live_server)
    page2.select_option("#om-category", "sanitation")
    page2.evaluate("([lon, lat]) => window.onemapReport.map.setView([lat, lon], 18, {animate: false})",
                   [lon, lat])
    point = page2.evaluate("([lon, lat]) => { var p = window.onemapReport.map.latLngToContainerPoint([lat, lon]);"
                           " return [p.x, p.y]; }", [lon + 0.00016, lat])
    box = page2.locator("#om-map").bounding_box()
    page2.mouse.click(box["x"] + point[0], box["y"] + point[1])
    case_code = report.case.code
    item = f"#om-dupe-list li[data-case='{case_code}']"
    page2.wait_for_selector(item, timeout=15_000)
    assert page2.is_visible("#om-dupes")
    assert page2.text_content(f"{item} .om-dupe-text") == "3 号楼东侧垃圾三天没清运"
    wait_for(page2, f"document.querySelector(\"{item} img\") && document.querySelector(\"{item} img\").naturalWidth > 0")
    tapped = page2.evaluate("window.onemapReport.point")
    assert tapped["crs"] == "wgs84" and 10 < _metres((lon, lat), (tapped["lon"], tapped["lat"])) < 20
    page2.click(f"{item} .om-me-too")
    joined = wait_for(page2, "window.onemapReport.submitted", timeout_s=15)
    codes.append(joined["code"])
    assert m.Report.objects.get(code=joined["code"]).case_id == report.case_id
    assert log2.foreign_requests() == [] and log2.errors() == [], log2.describe()

    # -- the command centre moves the case on; the first resident's tracking page shows it
    cases.case_accept(case_id=report.case_id, actor=COMMANDER)
    cases.case_file(case_id=report.case_id, actor=COMMANDER)
    page.goto(f"/report/t/{report.code}")
    wait_for(page, "window.onemapTrack && window.onemapTrack.ready === true", timeout_s=15)
    assert page.text_content("#om-state") == "已立案"
    steps = [s.strip() for s in page.locator("#om-steps li").all_text_contents()]
    assert [s.split(" ", 2)[-1] for s in steps] == ["收到上报", "有居民附议", "受理", "立案"]
    assert page.locator("#om-summary img").count() == 1  # its published photo
    assert "COMMANDER" not in page.content() and "browser.moderator" not in page.content()
    assert log.errors() == [], log.describe()
