"""The leaks found by attacking the server, each as a named regression test.

Stored script in a title, hidden elder alerts that could be found and changed, a count
on personal data that left no trace, HTML reads logged without the caller's address,
and tokens sent in a URL that reached the server's log.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import requests
from attacks import XSS_STRINGS, get, point_feature, write

from gis import models as m


# ---------------------------------------------------------------- stored script


def _script_of(page: str, variable: str) -> str:
    """The text of the <script> element that assigns ``variable`` (the page's embedded GeoJSON)."""
    for script in re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S):
        if f"var {variable}" in script:
            return script
    raise AssertionError(f"no script assigns {variable}")


def test_a_title_that_closes_the_script_stays_data_on_the_item_and_items_pages(live_server, accounts, worker,
                                                                                own_grid):
    """A grid worker's incident titled ``</script><img onerror=…>`` cannot end pygeoapi's script for an administrator."""
    inside = own_grid.geom.point_on_surface
    url = f"{live_server}/ogc/collections/incidents/items"
    created = write("POST", url, worker.auth, point_feature(inside.x, inside.y, title=XSS_STRINGS[0]))
    assert created.status_code == 201, created.text
    item_url = created.headers["Location"]
    try:
        admin = accounts["administrator"].auth
        for page_url, params in ((item_url, {"f": "html"}),
                                 (url, {"f": "html", "limit": "1", "sortby": "-reported_at"})):
            page = get(page_url, admin, **params)
            assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
            assert "</script><img" not in page.text  # nowhere: neither in the script nor as markup
            script = _script_of(page.text, "geojson_data")
            assert "\\u003c/script\\u003e\\u003cimg" in script  # the title is still there, as escaped JSON
    finally:
        m.Incident.objects.filter(pk=int(item_url.rsplit("/", 1)[1])).delete()


# ---------------------------------------------------------------- hidden objects


def _hidden_alert() -> m.Incident:
    alert = m.Incident.objects.filter(category="elder_inactivity").exclude(status="closed").first()
    assert alert is not None, "the demo has open elder-inactivity alerts"
    return alert


METHODS = (
    ("GET", None),
    ("HEAD", None),
    ("OPTIONS", None),
    ("PATCH", {"type": "Feature", "properties": {"severity": 9}}),  # invalid: must still be 404, not 400
    ("PATCH", {"type": "Feature", "properties": {"status": "closed"}}),
    ("PATCH", {"type": "Feature", "properties": {"status": "false_alarm"}}),
    ("PUT", {"type": "Feature", "properties": {"status": "closed", "notes": "x", "severity": 1}}),
    ("PATCH", "{not json"),
    ("DELETE", None),
)


@pytest.mark.parametrize("who", ["administrator", "commander", "department", "worker", "worker2"])
def test_an_elder_alert_is_not_found_for_every_method_and_role(live_server, accounts, who):
    """Elder-inactivity alerts are never published: every method answers exactly as for an id that does not exist."""
    alert = _hidden_alert()
    before = (alert.status, alert.severity, alert.notes)
    missing = m.Incident.objects.order_by("-id").first().id + 10_000
    auth = accounts[who].auth
    base = f"{live_server}/ogc/collections/incidents/items"
    for method, body in METHODS:
        answers = []
        for item_id in (alert.id, missing):
            if body is None:
                response = requests.request(method, f"{base}/{item_id}", auth=auth, timeout=30)
            else:
                response = write(method, f"{base}/{item_id}", auth, body)
            answers.append(response)
        hidden, absent = answers
        assert hidden.status_code == absent.status_code == 404, (who, method, body, hidden.status_code, hidden.text)
        if method != "HEAD":
            assert hidden.json()["description"] == absent.json()["description"].replace(str(missing), str(alert.id))
    alert.refresh_from_db()
    assert (alert.status, alert.severity, alert.notes) == before


def test_another_grids_incident_is_not_found_for_every_method(live_server, accounts):
    """A grid worker's 404 for another grid's incident comes before any check of the body."""
    other = m.Grid.objects.get(code=accounts["worker2"].grid_code)
    theirs = m.Incident.objects.filter(grid=other).exclude(category="elder_inactivity").first()
    before = (theirs.status, theirs.severity)
    _not_found_for_every_method(f"{live_server}/ogc/collections/incidents/items/{theirs.id}", accounts["worker"].auth)
    theirs.refresh_from_db()
    assert (theirs.status, theirs.severity) == before


def test_concurrent_reads_of_many_callers_on_the_event_loop_keep_each_callers_rows(live_server, accounts):
    """Feature reads answered on the server's event loop (layers.loop_reads) run side by side on a few
    connections, each batch with its caller's scope: interleaved and concurrent, no caller gets another's rows."""
    from concurrent.futures import ThreadPoolExecutor

    url = f"{live_server}/ogc/collections/incidents/items"
    callers = ["worker", "worker2", "analyst"] * 40

    def read(key: str) -> tuple[str, set]:
        response = get(url, accounts[key].auth, limit=10000)
        assert response.status_code == 200, response.text[:300]
        return key, {feature["id"] for feature in response.json()["features"]}

    expected = dict(read(key) for key in ("worker", "worker2", "analyst") for _ in range(3))  # one at a time
    for key in ("worker", "worker2"):
        in_grid = set(m.Incident.objects.filter(grid__code=accounts[key].grid_code).values_list("id", flat=True))
        assert expected[key] and expected[key] <= in_grid, key
    assert not expected["worker"] & expected["worker2"]
    assert expected["worker"] | expected["worker2"] < expected["analyst"]

    with ThreadPoolExecutor(12) as pool:
        for key, ids in pool.map(read, callers):
            assert ids == expected[key], key


@pytest.mark.parametrize("action", ["", "/acknowledge", "/handle", "/pass", "/escalate"])
def test_another_grids_case_is_not_found_for_every_method(live_server, accounts, action):
    """A grid worker's 404 for another grid's case over HTTP, whatever the method and body; nothing changes."""
    from gis.cases.services import case_open

    other = m.Grid.objects.get(code=accounts["worker2"].grid_code)
    theirs = m.Incident.objects.filter(grid=other).exclude(category="elder_inactivity").first()
    case = case_open(incident_id=theirs.id)
    before = m.Case.objects.filter(pk=case.id).values().get()
    _not_found_for_every_method(f"{live_server}/api/cases/{case.id}{action}", accounts["worker"].auth)
    assert m.Case.objects.filter(pk=case.id).values().get() == before


def _not_found_for_every_method(url: str, auth) -> None:
    for method, body in METHODS:
        if body is None:
            response = requests.request(method, url, auth=auth, timeout=30)
        else:
            response = write(method, url, auth, body)
        assert response.status_code == 404, (method, body, response.status_code)


# ---------------------------------------------------------------- the access log


def _log_rows(username: str, after_id: int):
    return m.AccessLogEntry.objects.filter(username=username, id__gt=after_id).order_by("id")


def _last_log_id() -> int:
    last = m.AccessLogEntry.objects.order_by("-id").first()
    return last.id if last else 0


# the name and phone are sealed at rest, no longer queryable (tests/test_personal.py): the clear fields stand in
@pytest.mark.parametrize("cql", ["gender = 'F'", "lives_alone = true", "age_band LIKE '8%'"])
def test_a_count_of_personal_data_is_logged_with_what_was_asked(live_server, worker, cql):
    """Filtering care_subjects past the last page returns no record, but its count is logged with the filter."""
    start = _last_log_id()
    response = get(f"{live_server}/ogc/collections/care_subjects/items", worker.auth, filter=cql,
                   offset="1000000", limit="10")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["features"] == [] and body["numberMatched"] > 0
    rows = list(_log_rows(worker.username, start))
    assert len(rows) == 1, [(r.record_id, r.query) for r in rows]
    row = rows[0]
    assert row.record_id is None and row.matched == body["numberMatched"]
    assert row.collection == "care_subjects" and row.role == "grid_worker" and row.remote_addr == "127.0.0.1"
    assert "offset=1000000" in row.query and cql.split()[0] in requests.utils.unquote(row.query)


def test_a_page_of_personal_data_logs_each_record_and_the_query(live_server, worker):
    start = _last_log_id()
    body = get(f"{live_server}/ogc/collections/care_subjects/items", worker.auth, limit="3").json()
    rows = list(_log_rows(worker.username, start))
    records = sorted(r.record_id for r in rows if r.record_id is not None)
    queries = [r for r in rows if r.record_id is None]
    assert records == sorted(str(f["id"]) for f in body["features"])
    assert len(queries) == 1 and queries[0].matched == body["numberMatched"]


def test_html_reads_of_personal_data_log_the_address_and_route(live_server, worker):
    url = f"{live_server}/ogc/collections/care_subjects/items"
    start = _last_log_id()
    page = get(url, worker.auth, f="html", limit="2")
    assert page.status_code == 200
    one = m.CareSubject.objects.filter(grid__code=worker.grid_code).first()
    assert get(f"{url}/{one.id}", worker.auth, f="html").status_code == 200
    rows = list(_log_rows(worker.username, start))
    assert rows and all(r.remote_addr == "127.0.0.1" for r in rows)
    assert {r.route for r in rows} == {"/ogc/collections/care_subjects/items",
                                       f"/ogc/collections/care_subjects/items/{one.id}"}
    assert str(one.id) in {r.record_id for r in rows}


def test_a_token_in_a_url_reaches_no_log(server_process, worker):
    """A token sent in the query string does not sign in, and neither the server's log nor the access log keeps it."""
    server = server_process("security-token-log")
    url = f"{server.base_url}/ogc/collections/care_subjects/items"
    token = worker.token
    sent = [
        get(url, None, token=token),
        get(url, None, access_token=token, f="html"),
        get(f"{server.base_url}/ogc/collections/grids/items", None, api_key=token, limit="1"),
        get(f"{server.base_url}/ogc/collections/grids/items/{token}", None),
        get(url, worker.auth, limit="1", key=token),  # signed in by the header, the URL's copy is still blanked
    ]
    assert [r.status_code for r in sent] == [401, 401, 200, 404, 200]
    secret = token[len("om_"):]
    deadline = time.monotonic() + 10
    while True:  # granian writes its access log from the worker: wait until the last request is in it
        text = server.log_path.read_text(errors="replace")
        if text.count("care_subjects/items") >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "care_subjects/items" in text, "the server wrote no access log"
    assert secret not in text and secret[:12] not in text
    assert "[redacted]" in text
    logged = m.AccessLogEntry.objects.filter(username=worker.username).exclude(query=None).order_by("-id").first()
    assert logged.query is not None and secret not in logged.query and "key=[redacted]" in logged.query
    for entry in m.AccessLogEntry.objects.exclude(query=None).values_list("query", flat=True):
        assert secret not in entry


# ---------------------------------------------------------------- the phone (/m/)


@pytest.mark.parametrize("action", ["/acknowledge", "/arrive", "/handle", "/return", "/request_escalation"])
def test_another_grids_task_is_not_found_for_every_method_even_with_an_idempotency_key(live_server, accounts,
                                                                                        action):
    """The phone's actions: another grid's case is a 404 whatever the method, body and key; no key is kept."""
    from gis.cases.services import case_open

    other = m.Grid.objects.get(code=accounts["worker2"].grid_code)
    theirs = m.Incident.objects.filter(grid=other).exclude(category="elder_inactivity").first()
    case = case_open(incident_id=theirs.id)
    before = m.Case.objects.filter(pk=case.id).values().get()
    url = f"{live_server}/api/cases/{case.id}{action}"
    for n, (method, body) in enumerate(METHODS):
        headers = {"Idempotency-Key": f"leak-{action[1:]}-{n:04d}", "Content-Type": "application/json"}
        data = body if isinstance(body, str) else (None if body is None else json.dumps(body))
        response = requests.request(method, url, data=data, headers=headers, auth=accounts["worker"].auth, timeout=30)
        assert response.status_code == 404, (method, body, response.status_code)
    assert m.Case.objects.filter(pk=case.id).values().get() == before
    assert not m.IdempotentRequest.objects.filter(key__startswith="leak-").exists()


def test_another_grids_care_alert_is_not_on_the_phone(live_server, accounts):
    """An elder's alert in the neighbouring grid is not among a grid worker's care alerts, nor its person."""
    other = m.Grid.objects.get(code=accounts["worker2"].grid_code)
    theirs = set(m.Incident.objects.filter(grid=other, category="elder_inactivity").values_list("id", flat=True))
    for who, grid in (("worker", accounts["worker"].grid_code), ("worker2", other.code)):
        rows = requests.get(f"{live_server}/m/api/care-alerts", auth=accounts[who].auth, timeout=30).json()["alerts"]
        shown = {row["incident_id"] for row in rows}
        assert set(m.Incident.objects.filter(id__in=shown).values_list("grid__code", flat=True)) <= {grid}
        assert all(row["person"] is None for row in rows)  # no case of theirs is dispatched to these accounts
        if who == "worker":
            assert not shown & theirs
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert requests.request(method, f"{live_server}/m/api/care-alerts", auth=accounts["worker"].auth,
                                timeout=30).status_code == 405


# ---------------------------------------------------------------- residents' reports

PHONE = "13987650123"
OTHER_PHONE = "13712340987"


def _phone_pattern(number: str) -> re.Pattern:
    """The number's digits in order with up to two separators between each (139-8765-0123, 139 8765 0123, +86…)."""
    return re.compile(r"[\s\-.()+/]{0,2}".join(number).encode())


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """(row, col) of the WebMercatorQuad tile holding the point."""
    import math

    n = 1 << z
    col = int((lon + 180) / 360 * n)
    row = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return row, col


@pytest.fixture
def reports_made():
    codes: list[str] = []
    yield codes
    from reporting import forget_reports

    forget_reports(codes)


def test_a_residents_phone_is_in_no_public_response_tile_layer_or_log_line(live_server, reports_made):
    """Report with a number (and 'me too' with another), publish it, then read everything the public can read."""
    from reporting import a_jpeg, post_report, report_spot

    from gis.reports import services
    from layers.catalogue import public_layers
    from layers.tiles import TILE_LAYERS

    lon, lat = report_spot()
    sent = post_report(live_server, lon, lat, photos=[a_jpeg()], phone="+86 139-8765-0123",
                       description="路灯坏了，晚上很黑")
    assert sent.status_code == 201, sent.text
    code = sent.json()["code"]
    reports_made.append(code)
    report = m.Report.objects.get(code=code)
    joined = requests.post(f"{live_server}/report/api/me-too", json={"case": report.case.code, "phone": OTHER_PHONE},
                           headers={"X-Requested-With": "onemap-report"}, timeout=30)
    assert joined.status_code == 201, joined.text
    reports_made.append(joined.json()["code"])
    services.report_moderate(code=code, actor=m_identity(), action="publish")

    urls = ["/", "/healthz", "/openapi.json", "/ogc", "/ogc/", "/ogc/collections", "/ogc/collections?f=html",
            "/ogc/conformance", "/report/", f"/report/t/{code}", f"/report/api/t/{code}",
            f"/report/t/{joined.json()['code']}", f"/report/api/t/{joined.json()['code']}",
            f"/report/photos/{report.id}/1.jpg",
            f"/report/api/duplicates?category=sanitation&lon={lon}&lat={lat}",
            f"/report/api/duplicates?category=sanitation&lon={lon}&lat={lat}&crs=wgs84"]
    for form in ("json", "xml"):  # Open311's public reads of the same reports
        urls += [f"/open311/v2/discovery.{form}", f"/open311/v2/services.{form}",
                 f"/open311/v2/services/sanitation.{form}", f"/open311/v2/requests.{form}",
                 f"/open311/v2/requests.{form}?service_code=sanitation&status=open",
                 f"/open311/v2/requests/{report.id}.{form}", f"/open311/v2/media/{report.id}/1.jpg"]
    for layer in public_layers():
        base = f"/ogc/collections/{layer.id}"
        urls += [base, f"{base}?f=html", f"{base}/items?limit=10000", f"{base}/items?f=html&limit=500",
                 f"{base}/items?bbox={lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}",
                 f"{base}/queryables", f"{base}/schema"]
        if layer.id in TILE_LAYERS:
            spec = TILE_LAYERS[layer.id]
            for z in sorted({spec.min_zoom, max(spec.min_zoom, 16), min(spec.max_zoom, 18)}):
                row, col = _tile(lon, lat, z)
                urls.append(f"{base}/tiles/WebMercatorQuad/{z}/{row}/{col}")
    patterns = [_phone_pattern(PHONE), _phone_pattern(OTHER_PHONE)]
    answered = 0
    for url in urls:
        response = requests.get(live_server + url, timeout=60)
        assert response.status_code < 500, (url, response.status_code)
        answered += response.status_code == 200
        for pattern in patterns:
            assert not pattern.search(response.content), f"a phone number in {url}"
            assert not pattern.search(repr(response.headers).encode()), f"a phone number in the headers of {url}"
    assert answered >= len(urls) - 2
    duplicates = requests.get(f"{live_server}/report/api/duplicates",
                              params={"category": "sanitation", "lon": lon, "lat": lat}, timeout=30).json()
    assert duplicates["duplicates"][0]["description"] == "路灯坏了，晚上很黑"  # the published report was there
    test_db = os.environ.get("ONEMAP_TEST_DATABASE", "onemap_test")
    log_path = Path(__file__).resolve().parents[2] / ".var" / f"test-server-{test_db}.log"
    deadline = time.monotonic() + 10
    while b"/report/api/duplicates" not in (log := log_path.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.2)  # granian writes its access log from the worker
    assert b"/report/api/duplicates" in log, "the server wrote no access log"
    for pattern in patterns:
        assert not pattern.search(log), "a phone number in the server's log"


def m_identity():
    from core.identity import Identity

    return Identity(role="commander", username="security.moderator")


METHODS_ANY = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")


@pytest.mark.parametrize("state", ["pending", "hidden", "removed"])
def test_an_unpublished_photo_or_text_is_not_found_for_every_method(live_server, reports_made, state):
    """A pending or hidden report's photo (or a removed photo) answers as one that never existed; its text is nowhere."""
    from reporting import a_jpeg, report_spot

    from gis.reports import services

    lon, lat = report_spot()
    report = services.report_submit(category="facility_damage", description="私密文字 SECRET-TEXT-4411",
                                     lon=lon, lat=lat, photo_files=[a_jpeg(), a_jpeg()])
    reports_made.append(report.code)
    if state == "hidden":
        services.report_moderate(code=report.code, actor=m_identity(), action="publish")
        services.report_moderate(code=report.code, actor=m_identity(), action="hide")
    elif state == "removed":
        services.report_moderate(code=report.code, actor=m_identity(), action="remove_photo", photo="2.jpg")
        services.report_moderate(code=report.code, actor=m_identity(), action="publish")
    name = "2.jpg"
    missing = m.Report.objects.order_by("-id").first().id + 10_000
    for method in METHODS_ANY:
        hidden = requests.request(method, f"{live_server}/report/photos/{report.id}/{name}", timeout=30)
        absent = requests.request(method, f"{live_server}/report/photos/{missing}/{name}", timeout=30)
        assert hidden.status_code == absent.status_code == 404, (state, method, hidden.status_code)
        assert b"\xff\xd8" not in hidden.content
    found = requests.get(f"{live_server}/report/api/duplicates",
                         params={"category": "facility_damage", "lon": lon, "lat": lat}, timeout=30)
    assert found.status_code == 200 and report.case.code in found.text
    if state != "removed":
        assert "SECRET-TEXT-4411" not in found.text
    tracked = requests.get(f"{live_server}/report/api/t/{report.code}", timeout=30).json()
    if state == "hidden":
        assert "SECRET-TEXT-4411" not in json.dumps(tracked, ensure_ascii=False) and tracked["photos"] == []
    for path in ("/report/api/moderation", "/report/moderation", f"/report/api/moderation/{report.code}/publish"):
        for method in ("GET", "POST"):
            answer = requests.request(method, live_server + path, timeout=30,
                                      headers={"X-Requested-With": "onemap-report"})
            assert answer.status_code in (401, 405), (path, method, answer.status_code)
            assert "SECRET-TEXT-4411" not in answer.text


# ---------------------------------------------------------------- Open311: public reads of residents' reports


def test_open311_shows_no_hidden_or_unpublished_words_no_phone_and_no_tracking_code(live_server):
    """Reports posted by residents: GET requests (JSON and XML, list and one) shows a description only once published."""
    import shutil

    from core.identity import Identity
    from gis.open311.services import key_add, request_submit
    from gis.reports import photos
    from gis.reports.services import report_moderate

    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    inside = grid.geom.point_on_surface
    key, _ = key_add(name="security-leaks")
    staff = Identity(role="commander", username="security")
    made = [request_submit(key=key, service_code="sanitation", lon=inside.x, lat=inside.y, description=text,
                           phone="13912345678", device=f"leak-{n}")
            for n, text in enumerate(("公开的话", "隐藏的话 张三 13912345678", "待审的话 李四"))]
    try:
        report_moderate(code=made[0].code, actor=staff, action="publish")
        report_moderate(code=made[1].code, actor=staff, action="hide")
        base = f"{live_server}/open311/v2"
        answers = [get(f"{base}/requests.{fmt}", None).text for fmt in ("json", "xml")]
        answers += [get(f"{base}/requests/{r.id}.{fmt}", None).text for r in made for fmt in ("json", "xml")]
        answers += [get(f"{base}/requests.json", None, service_request_id=",".join(str(r.id) for r in made)).text]
        assert "公开的话" in answers[0] and "公开的话" in answers[1]
        for text in answers:
            assert "隐藏的话" not in text and "待审的话" not in text and "13912345678" not in text
            for report in made:
                assert report.code not in text and report.incident.code not in text
        assert get(f"{base}/requests/{made[1].id}.json", None).status_code == 404
    finally:
        m.Open311Request.objects.filter(key=key).delete()
        m.Incident.objects.filter(id__in=[r.incident_id for r in made]).delete()
        m.Report.objects.filter(id__in=[r.id for r in made]).delete()
        key.delete()
        for report in made:
            shutil.rmtree(photos.folder(report.code), ignore_errors=True)
