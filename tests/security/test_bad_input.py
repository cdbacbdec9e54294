"""Bad input the attack found answered with a 500 or an unclear answer: each now a 4xx that says what to change.

Every refused write leaves the database as it was; every accepted one is where it was meant to be.
"""

from __future__ import annotations

import json

import pytest
import requests
from attacks import assert_ogc_error, get, point_feature, square_feature, write
from pyproj import Transformer

from gis import models as m


@pytest.fixture
def inside(worker):
    return m.Grid.objects.get(code=worker.grid_code).geom.point_on_surface


def _incidents(live_server: str) -> str:
    return f"{live_server}/ogc/collections/incidents/items"


def _with_geometry(feature: dict, coordinates) -> dict:
    return {**feature, "geometry": {"type": feature["geometry"]["type"], "coordinates": coordinates}}


@pytest.mark.parametrize("change, words", [
    (lambda f: _with_geometry(f, ["a", "b"]), ("coordinates must be finite numbers",)),
    (lambda f: _with_geometry(f, []), ("expected [x, y]",)),
    (lambda f: _with_geometry(f, [113.654]), ("expected [x, y]",)),
    (lambda f: _with_geometry(f, [113.654, 34.75, 1, 2]), ("expected [x, y]",)),
    (lambda f: _with_geometry(f, [[113.654, 34.75]]), ("expected [x, y]",)),
    (lambda f: _with_geometry(f, [float("1e400"), 34.75]), ("finite",)),
    (lambda f: _with_geometry(f, None), ("expected [x, y]",)),
    (lambda f: {**f, "properties": {**f["properties"], "title": "长" * 300}}, ("title", "300", "200")),
    (lambda f: {**f, "properties": {**f["properties"], "floor": 40000}}, ("floor", "40000")),
    (lambda f: {**f, "properties": {**f["properties"], "floor": -40000}}, ("floor",)),
    (lambda f: {**f, "properties": {**f["properties"], "severity": 2 ** 40}}, ("severity",)),
    (lambda f: {**f, "properties": {**f["properties"], "title": "a\x00b"}}, ("title", "NUL")),
    (lambda f: {**f, "properties": {**f["properties"], "notes": "\x00"}}, ("notes", "NUL")),
    (lambda f: {**f, "properties": {**f["properties"], "title": ["a"]}}, ("title", "string")),
    (lambda f: {**f, "properties": {**f["properties"], "category": "<b>x</b>"}}, ("category",)),
    (lambda f: {**f, "properties": {**f["properties"], "floor": 1.5}}, ("floor", "integer")),
], ids=["letters", "empty", "one-number", "four-numbers", "nested", "infinite", "null", "long-title", "floor-high",
        "floor-low", "severity-huge", "nul-title", "nul-notes", "list-title", "unknown-category", "fraction-floor"])
def test_a_bad_feature_is_a_400_that_names_the_value(live_server, worker, inside, change, words):
    before = m.Incident.objects.count()
    body = json.loads(json.dumps(change(point_feature(inside.x, inside.y, title="ok")), allow_nan=True))
    response = write("POST", _incidents(live_server), worker.auth, json.dumps(body, allow_nan=True))
    assert_ogc_error(response, 400, *words)
    assert m.Incident.objects.count() == before


def test_a_bad_patch_is_a_400_and_changes_nothing(live_server, accounts):
    incident = m.Incident.objects.exclude(category="elder_inactivity").first()
    before = (incident.title, incident.notes, incident.severity)
    url = f"{_incidents(live_server)}/{incident.id}"
    for properties, word in (({"notes": "a\x00"}, "NUL"), ({"severity": 40000}, "severity"),
                             ({"status": "gone"}, "status")):
        assert_ogc_error(write("PATCH", url, accounts["commander"].auth,
                               {"type": "Feature", "properties": properties}), 400, word)
    incident.refresh_from_db()
    assert (incident.title, incident.notes, incident.severity) == before


def test_json_nested_100000_deep_is_a_400(live_server, worker):
    body = "[" * 100_000 + "]" * 100_000
    response = write("POST", _incidents(live_server), worker.auth, body)
    assert_ogc_error(response, 400)
    deep = '{"type": "Feature", "properties": {"title": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    assert_ogc_error(write("POST", _incidents(live_server), worker.auth, deep), 400)


def test_a_3_mb_body_is_a_413_with_a_sentence(live_server, worker, inside):
    feature = point_feature(inside.x, inside.y, title="x", notes="n" * (3 * 1024 * 1024))
    body = assert_ogc_error(write("POST", _incidents(live_server), worker.auth, feature), 413, "MiB")
    assert "at most 2 MiB" in body["description"]


def test_a_body_over_the_servers_limit_is_refused_before_it_is_read(live_server, worker):
    """17 MiB: refused by the ASGI layer from Content-Length, for every route, with a sentence."""
    big = b"x" * (17 * 1024 * 1024)
    for url in (_incidents(live_server), f"{live_server}/screen/api/scenes", f"{live_server}/"):
        response = requests.post(url, data=big, auth=worker.auth, timeout=60,
                                 headers={"Content-Type": "application/geo+json"})
        assert response.status_code == 413, (url, response.status_code)
        assert "at most 16 MiB" in response.text


@pytest.mark.parametrize("cql, words", [
    ("title = 'a\x00b'", ("NUL",)),
    ("severity = " + " + ".join(["1"] * 3000), ("levels deep",)),
    ("severity = " + "(" * 500 + "1" + ")" * 500, ("deep",)),
    ("severity * 2147483647 * 2147483647 > 1", ("cannot evaluate",)),
    ("title = 'x'" + " AND title = 'x'" * 1300, ("characters long",)),
])
def test_a_filter_that_cannot_be_run_is_a_400(live_server, accounts, cql, words):
    response = get(_incidents(live_server), accounts["analyst"].auth, filter=cql)
    assert_ogc_error(response, 400, *words)


def test_the_cql2_json_variant_has_the_same_limits(live_server, accounts):
    deep = '{"op": "+", "args": [' * 300 + "1" + ", 1]}" * 300  # built as text: json.dumps would recurse as deep
    document = '{"op": "=", "args": [{"property": "severity"}, ' + deep + "]}"
    response = get(_incidents(live_server), accounts["analyst"].auth, filter=document,
                   **{"filter-lang": "cql2-json"})
    assert_ogc_error(response, 400, "deep")


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2999-01-01"])
@pytest.mark.parametrize("ext", ["json", "tif", "png"])
def test_a_density_day_outside_the_data_is_a_400_that_names_the_range(live_server, accounts, day, ext):
    response = requests.get(f"{live_server}/screen/density/{day}.{ext}", auth=accounts["analyst"].auth, timeout=60)
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "can be asked for" in response.text


@pytest.mark.parametrize("crs, transform", [
    ("http://www.opengis.net/def/crs/EPSG/0/3857", "EPSG:3857"),
    ("http://www.opengis.net/def/crs/EPSG/0/4547", "EPSG:4547"),
    ("http://www.opengis.net/def/crs/EPSG/0/4490", "EPSG:4490"),
    ("http://www.opengis.net/def/crs/EPSG/0/4326", "EPSG:4326"),
])
def test_content_crs_is_reprojected_for_every_listed_crs(live_server, worker, inside, crs, transform):
    """Part 4: a POST in any CRS the collection lists is stored at the same place in CRS84."""
    x, y = Transformer.from_crs("EPSG:4326", transform, always_xy=True).transform(inside.x, inside.y)
    if transform != "EPSG:3857":
        x, y = y, x  # latitude (northing) first, as these CRSs order their axes
    listed = get(f"{live_server}/ogc/collections/incidents", worker.auth).json()["crs"]
    assert crs in listed
    feature = point_feature(0, 0, title="投影")
    feature["geometry"]["coordinates"] = [x, y]
    response = write("POST", _incidents(live_server), worker.auth, feature, headers={"Content-Crs": f"<{crs}>"})
    assert response.status_code == 201, response.text
    incident = m.Incident.objects.get(pk=int(response.headers["Location"].rsplit("/", 1)[1]))
    try:
        assert incident.geom.srid == 4326
        assert abs(incident.geom.x - inside.x) < 1e-6 and abs(incident.geom.y - inside.y) < 1e-6
    finally:
        incident.delete()


def test_an_unknown_content_crs_is_a_400(live_server, worker, inside):
    response = write("POST", _incidents(live_server), worker.auth, point_feature(inside.x, inside.y),
                     headers={"Content-Crs": "<http://www.opengis.net/def/crs/EPSG/0/2000>"})
    assert response.status_code == 400


def test_an_anonymous_write_is_asked_to_sign_in(live_server):
    for method, url in (("POST", _incidents(live_server)),
                        ("POST", f"{live_server}/ogc/collections/no_parking_zones/items"),
                        ("PATCH", f"{live_server}/ogc/collections/parking_spots/items/1")):
        response = write(method, url, None, point_feature(113.65, 34.75))
        body = assert_ogc_error(response, 401, "sign")
        assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
        assert body["code"]
    # nobody may write a read-only layer: that stays 405 with Allow
    response = write("POST", f"{live_server}/ogc/collections/grids/items", None, square_feature(113.65, 34.75))
    assert response.status_code == 405 and "POST" not in response.headers["Allow"]


def test_an_administrator_may_delete_an_incident_with_its_history(live_server, accounts, worker, inside):
    created = write("POST", _incidents(live_server), worker.auth, point_feature(inside.x, inside.y, title="删"))
    url = created.headers["Location"]
    assert write("PATCH", url, accounts["commander"].auth,
                 {"type": "Feature", "properties": {"status": "dispatched"}}).status_code == 204
    pk = int(url.rsplit("/", 1)[1])
    assert m.IncidentStatusChange.objects.filter(incident_id=pk).exists()
    assert requests.delete(url, auth=accounts["commander"].auth, timeout=30).status_code == 405
    response = requests.delete(url, auth=accounts["administrator"].auth, timeout=30)
    assert response.status_code == 204, response.text
    assert not m.Incident.objects.filter(pk=pk).exists()
    assert requests.delete(url, auth=accounts["administrator"].auth, timeout=30).status_code == 404


@pytest.mark.parametrize("params", [{"sortby": ""}, {"sortby": "", "bbox": "", "datetime": "", "filter": ""},
                                    {"sortby": ","}, {"sortby": "-"}, {"limit": "0"}, {"bbox": "1,2,3"}])
def test_empty_or_broken_parameters_of_an_html_page_are_a_default_or_a_400(live_server, params):
    """Found by the long fuzzing profile: pygeoapi's own parse of sortby= raised (500) on the HTML items page."""
    for f in ("html", "json"):
        response = get(f"{live_server}/ogc/collections/grids/items", None, f=f, **params)
        assert response.status_code in (200, 400), (f, params, response.status_code, response.text[:200])
        if all(value == "" for value in params.values()):
            assert response.status_code == 200


@pytest.mark.parametrize("path", ["0" * 300, "a" * 5000, "%C2%80" * 200, "x%00y", "../../../etc/passwd",
                                  "css/..%2F..%2F..%2Fsettings.py"])
def test_a_static_path_no_file_can_have_is_a_404(live_server, path):
    """Found by the long fuzzing profile: a file name too long for the file system was a 500."""
    response = requests.get(f"{live_server}/ogc/static/{path}", timeout=30)
    traversal = ".." in path  # Django's static view calls that suspicious: 400
    assert response.status_code in ((400, 404) if traversal else (404,)), (path, response.status_code)


# ---------------------------------------------------------------- residents' reports


@pytest.fixture
def spot(demo_db):
    from reporting import report_spot

    return report_spot()


@pytest.fixture
def reports_made():
    codes: list[str] = []
    yield codes
    from reporting import forget_reports

    forget_reports(codes)


@pytest.mark.parametrize("body, content_type", [
    (b"--b\r\nContent-Disposition: form-data; name=\"lon\"\r\n\r\n113.6", "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
    (b"no boundary at all", "multipart/form-data"),
    (b"--" + b"b" * 100 + b"\r\n", "multipart/form-data; boundary=" + "b" * 100),
    (b"\x00\xff" * 1000, "multipart/form-data; boundary=\x01"),
    (b'{"category": "sanitation", "lon": 113.6, "lat": 34.7}', "application/json"),
    (b"category=sanitation&lon=113.6&lat=34.7\x00", "text/plain"),
])
def test_a_malformed_report_body_is_a_400(live_server, body, content_type):
    from reporting import REPORT_WRITE

    response = requests.post(f"{live_server}/report/api/reports", data=body, timeout=30,
                             headers={**REPORT_WRITE, "Content-Type": content_type})
    assert response.status_code == 400, (response.status_code, response.text[:300])
    if response.headers.get("Content-Type", "").startswith("application/json"):  # (granian refuses a control byte
        assert response.json()["error"]  # in a header itself, before the application)


@pytest.mark.parametrize("fields, words", [
    ({"lon": "113.6\x00"}, "lon must be a number"),
    ({"lon": "Infinity"}, "lon must be a number"),
    ({"lat": "-91"}, "lat must be a number"),
    ({"lon": "1" * 5000}, "lon must be a number"),
    ({"lon": "0", "lat": "0"}, "不在本街道"),
    ({"description": "\x00"}, "NUL"),
    ({"description": "长" * 5000}, "at most 4,000"),
    ({"category": "sanitation\x00"}, "category must be one of"),
    ({"device": "d" * 300}, "device must be text of at most 200"),
    ({"phone": "1390000\x00000"}, "mainland mobile number"),
    ({"crs": "gcj02\x00"}, "crs must be wgs84 or gcj02"),
])
def test_bad_report_fields_are_a_400_that_says_why(live_server, spot, fields, words):
    from reporting import post_report

    before = m.Report.objects.count()
    response = post_report(live_server, **{"lon": spot[0], "lat": spot[1], **fields})
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert words in response.json()["error"]
    assert m.Report.objects.count() == before


def test_huge_report_bodies_are_413_with_a_sentence(live_server, spot):
    from reporting import REPORT_WRITE, a_jpeg, post_report

    one_big = post_report(live_server, *spot, photos=[a_jpeg() + b"\x00" * (8 * 1024 * 1024 + 1)])
    assert one_big.status_code == 413 and "8 MB" in one_big.json()["error"]
    huge_field = post_report(live_server, *spot, description="x" * (17 * 1024 * 1024))
    assert huge_field.status_code == 413, huge_field.status_code
    over_all = requests.post(f"{live_server}/report/api/reports", data=b"x" * (26 * 1024 * 1024), timeout=60,
                             headers={**REPORT_WRITE, "Content-Type": "multipart/form-data; boundary=b"})
    assert over_all.status_code == 413 and "at most 25 MiB" in over_all.text
    me_too = requests.post(f"{live_server}/report/api/me-too", data=b'{"case": "' + b"x" * 70_000 + b'"}',
                           timeout=30, headers={**REPORT_WRITE, "Content-Type": "application/json"})
    assert me_too.status_code == 413


def test_three_full_photos_fit_the_reports_own_body_limit(live_server, spot, reports_made):
    """Three photos of 7 MB (24 MB with the form): past the server's 16 MiB, within the report route's own limit."""
    from reporting import a_jpeg, post_report

    padded = a_jpeg() + b"\x00" * (7 * 1024 * 1024)  # trailing bytes after the image's end, dropped by re-encoding
    response = post_report(live_server, *spot, photos=[padded] * 3)
    assert response.status_code == 201, (response.status_code, response.text[:300])
    reports_made.append(response.json()["code"])
    report = m.Report.objects.get(code=response.json()["code"])
    assert report.photos == ["1.jpg", "2.jpg", "3.jpg"]


@pytest.mark.parametrize("path", ["/report/api/t/RNOSUCH0CODE", "/report/api/t/%00", "/report/t/r%00x",
                                  "/report/photos/1/..%2F..%2Fsecret_key", "/report/photos/99999999999999999999/1.jpg",
                                  "/report/api/duplicates?category=sanitation&lon=%00&lat=1"])
def test_odd_report_urls_are_client_errors(live_server, path):
    response = requests.get(live_server + path, timeout=30)
    assert 400 <= response.status_code < 500, (path, response.status_code)


# ---------------------------------------------------------------- Open311 (/open311/v2/)


@pytest.fixture
def open311_key(demo_db):
    """An Open311 key in the shared test database, and everything posted with it removed afterwards."""
    import shutil

    from gis.open311.services import key_add
    from gis.reports import photos

    row, secret = key_add(name="security-bad-input")
    yield secret
    made = list(m.Report.objects.filter(api_key=row.name))
    m.Open311Request.objects.filter(key=row).delete()
    m.Incident.objects.filter(id__in=[r.incident_id for r in made if r.incident_id]).delete()
    m.Report.objects.filter(id__in=[r.id for r in made]).delete()
    row.delete()
    for report in made:
        shutil.rmtree(photos.folder(report.code), ignore_errors=True)


def _open311_counts():
    return m.Report.objects.count(), m.Incident.objects.count(), m.Case.objects.count()


@pytest.mark.parametrize("body, content_type, status, words", [
    ("api_key={key}&service_code=sanitation&lat={lat}&long={lon}&description=a%00b", None, 400, "NUL"),
    ("api_key={key}&service_code=sanitation&lat=nan&long=113.65", None, 400, "lat must be a number"),
    ("api_key={key}&service_code=sanitation&lat=1e400&long=113.65", None, 400, "lat must be a number"),
    ("api_key={key}&service_code=%00&lat={lat}&long={lon}", None, 400, "service_code"),
    ("api_key={key}&service_code=sanitation&address_string=%00", None, 400, "NUL"),
    ("api_key={key}&service_code=sanitation&lat={lat}&long={lon}&device_id=%00", None, 400, "device"),
    ("api_key={key}&service_code=sanitation&lat={lat}&long={lon}&attribute[kind]=%00", None, 400, "kind"),
    ("api_key=%00", None, 403, "not valid"),
    ("--x\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n{key}\r\n--x--garbage",
     "multipart/form-data", 400, ""),
    ("--x\r\nbroken", "multipart/form-data; boundary=x", 403, "api_key is required"),
    ("&".join(f"f{n}=1" for n in range(1100)), None, 400, "form"),
], ids=["nul-description", "nan", "infinite", "nul-service", "nul-address", "nul-device", "nul-attribute", "nul-key",
        "multipart-without-boundary", "multipart-broken", "too-many-fields"])
def test_a_bad_open311_post_is_a_4xx_and_changes_nothing(live_server, open311_key, body, content_type, status, words):
    before = _open311_counts()
    inside = m.Grid.objects.filter(level=3).order_by("code").first().geom.point_on_surface
    body = body.replace("{key}", open311_key).replace("{lat}", f"{inside.y:.6f}").replace("{lon}", f"{inside.x:.6f}")
    response = requests.post(f"{live_server}/open311/v2/requests.json", data=body,
                             headers={"Content-Type": content_type or "application/x-www-form-urlencoded"},
                             timeout=60)
    assert response.status_code == status, (response.status_code, response.text[:300])
    (error,) = response.json()
    assert error["code"] == status and words in error["description"], error
    assert _open311_counts() == before


def test_an_open311_photo_over_the_servers_limit_is_refused_before_it_is_read(live_server, open311_key):
    before = _open311_counts()
    response = requests.post(f"{live_server}/open311/v2/requests.xml", timeout=60,
                             data={"api_key": open311_key, "service_code": "sanitation", "lat": "34.75",
                                   "long": "113.65"},
                             files={"media": ("big.jpg", b"\xff\xd8\xff" + b"\x00" * (17 * 1024 * 1024))})
    assert response.status_code == 413 and "at most 16 MiB" in response.text
    assert _open311_counts() == before


@pytest.mark.parametrize("query", [{"start_date": "9999-12-31T23:59:59+14:00"}, {"end_date": "0001-01-01"},
                                   {"service_request_id": "9" * 30}, {"service_request_id": ",,,"},
                                   {"status": "\x00"}, {"jurisdiction_id": "\x00"}])
def test_odd_open311_queries_are_answered_below_500(live_server, query):
    response = get(f"{live_server}/open311/v2/requests.xml", None, **query)
    assert response.status_code in (200, 400, 404), (query, response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("text/xml")
