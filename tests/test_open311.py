"""Open311 GeoReport v2 at /open311/v2/: the specification's requests and answers, in JSON and XML.

The examples follow GeoReport v2 (wiki.open311.org/GeoReport_v2): the service list, a service
definition, POST requests (form-encoded, and multipart with a photo), GET requests, GET a
request, GET tokens. Bad input is a 4xx with the specification's ``[{code, description}]`` and
changes nothing. Requests run in this process (Django's test client) inside a transaction
rolled back at the end of each test; photo folders are removed by the ``made`` fixture.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from lxml import etree
from test_reports import COMMANDER, PHONE, _close, jpeg

from gis import models as m
from gis.cases import services as cases
from gis.open311 import selectors as open311_reads
from gis.open311.services import key_add, key_revoke
from gis.reports import photos
from gis.reports import services as reports
from gis.spatial import gcj02

BASE = "/open311/v2"
REQUEST_FIELDS = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True)  # our own answers, parsed without entities


def xml(response):
    assert response["Content-Type"].startswith("text/xml"), response["Content-Type"]
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return etree.fromstring(response.content, parser=_SAFE_XML)


@pytest.fixture
def made(rollback):
    """Photo folders of the reports made in the test are removed (the database is rolled back)."""
    yield
    for code in m.Report.objects.values_list("code", flat=True):
        shutil.rmtree(photos.folder(code), ignore_errors=True)


@pytest.fixture
def key(made):
    _, secret = key_add(name="zz12345-app")
    return secret


@pytest.fixture
def place(demo_db):
    """(lat, long) well inside the first level-3 grid."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT ST_Y(p), ST_X(p) FROM grids g,
                   LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -60)::geometry) AS p) q
            WHERE g.level = 3 AND NOT ST_IsEmpty(p) ORDER BY g.code LIMIT 1""")
        return cursor.fetchone()


def client() -> Client:
    return Client(HTTP_HOST="127.0.0.1")


def post(fmt: str, form: dict, **kw):
    return client().post(f"{BASE}/requests.{fmt}", form, **kw)


def new_request(key, place, fmt="json", **fields):
    lat, lon = place
    form = {"api_key": key, "service_code": "sanitation", "lat": f"{lat:.7f}", "long": f"{lon:.7f}",
            "description": "楼下垃圾堆了三天", **fields}
    response = post(fmt, form)
    assert response.status_code == 201, response.content.decode()
    if fmt == "json":
        return response.json()[0]
    return {child.tag: child.text for child in xml(response)[0]}


def counts():
    return (m.Report.objects.count(), m.Incident.objects.count(), m.Case.objects.count(),
            m.Open311Request.objects.count())


# -- services ------------------------------------------------------------------------------------


def test_services_json_and_xml_list_the_residents_categories_with_their_time_limits(demo_db):
    listed = client().get(f"{BASE}/services.json").json()
    codes = [s["service_code"] for s in listed]
    assert codes == list(reports.CATEGORIES) and "elder_inactivity" not in codes
    sanitation = listed[codes.index("sanitation")]
    assert set(sanitation) == {"service_code", "service_name", "description", "metadata", "type", "keywords",
                               "group"}
    assert sanitation["service_name"] == "环境卫生" and sanitation["type"] == "realtime"
    assert sanitation["metadata"] is True and listed[codes.index("resident_report")]["metadata"] is False
    assert "1 工作小时内派遣" in sanitation["description"] and "1 个工作日内处置" in sanitation["description"]
    root = xml(client().get(f"{BASE}/services.xml"))
    assert root.tag == "services" and [s.findtext("service_code") for s in root] == codes
    assert root[codes.index("fire_smoke")].findtext("metadata") == "false"
    assert "119" in root[codes.index("fire_smoke")].findtext("description")


def test_a_service_definition_lists_its_attributes(demo_db):
    definition = client().get(f"{BASE}/services/facility_damage.json").json()
    assert definition["service_code"] == "facility_damage"
    (attribute,) = definition["attributes"]
    assert set(attribute) == {"variable", "code", "datatype", "required", "datatype_description", "order",
                              "description", "values"}
    assert attribute["code"] == "facility" and attribute["datatype"] == "singlevaluelist" and attribute["required"]
    assert {"key": "streetlight", "name": "路灯"} in attribute["values"]
    root = xml(client().get(f"{BASE}/services/facility_damage.xml"))
    assert root.tag == "service_definition"
    assert [v.findtext("key") for v in root.find("attributes/attribute/values")][:2] == ["streetlight", "manhole"]
    missing = client().get(f"{BASE}/services/elder_inactivity.xml")
    assert missing.status_code == 404 and "no service" in xml(missing).findtext("error/description")


def test_discovery_names_the_endpoint_its_formats_and_the_jurisdiction(demo_db):
    document = client().get(f"{BASE}/discovery.json").json()
    (endpoint,) = document["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and set(endpoint["formats"]) == {"text/xml", "application/json"}
    level1 = m.Grid.objects.get(level=1)
    assert document["jurisdictions"] == [{"jurisdiction_id": level1.code, "name": level1.name}]
    assert xml(client().get(f"{BASE}/discovery.xml")).findtext("endpoints/endpoint/formats/format") == "text/xml"


# -- create, read, list, token ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_post_opens_a_case_and_answers_with_its_id_and_token(key, place, fmt):
    answer = new_request(key, place, fmt, device_id="phone-7", phone=PHONE, email="li@example.com",
                         first_name="Lei", last_name="Li", **{"attribute[kind][]": ["garbage", "odour"]},
                         jurisdiction_id=m.Grid.objects.get(level=1).code)
    assert set(answer) == {"service_request_id", "token", "service_notice", "account_id"}
    report = m.Report.objects.get(pk=int(answer["service_request_id"]))
    assert answer["token"] == report.code and "1 个工作日内处置" in answer["service_notice"]
    assert report.channel == "open311" and report.api_key == "zz12345-app" and report.case.state == "reported"
    assert report.device_digest and report.phone_cipher is not None
    assert report.description == "楼下垃圾堆了三天\n【类型：垃圾堆积、异味】"
    assert m.Open311Request.objects.get(report=report).attributes == {"kind": ["garbage", "odour"]}
    with connection.cursor() as cursor:  # neither the e-mail, the names nor the number are kept as text
        for table in ("reports", "open311_requests", "incidents", "cases"):
            cursor.execute(f"SELECT count(*) FROM {table} t WHERE t::text ~ %s", ["li@example|Lei|" + PHONE])
            assert cursor.fetchone()[0] == 0, table


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_get_a_request_shows_its_status_and_due_time_and_only_published_words(key, place, fmt):
    answer = new_request(key, place, description="三号楼门口垃圾桶满了")
    rid = answer["service_request_id"]
    report = m.Report.objects.get(pk=int(rid))
    fetched = _one(fmt, rid)
    assert list(fetched) == REQUEST_FIELDS
    assert fetched["status"] == "open" and fetched["status_notes"] == "已收到"
    assert fetched["description"] in ("", None)  # waiting for a moderator: not shown
    assert float(fetched["lat"]) == round(place[0], 3) and float(fetched["long"]) == round(place[1], 3)
    assert fetched["agency_responsible"] == report.case.grid.name
    cases.case_accept(case_id=report.case_id, actor=COMMANDER)
    cases.case_file(case_id=report.case_id, actor=COMMANDER)
    due = m.Case.objects.get(pk=report.case_id).due_at
    assert _one(fmt, rid)["expected_datetime"] == timezone.localtime(due).isoformat(timespec="seconds")
    reports.report_moderate(code=report.code, actor=COMMANDER, action="publish")
    published = _one(fmt, rid)
    assert published["description"] == "三号楼门口垃圾桶满了"
    assert float(published["lat"]) == pytest.approx(report.geom.y, abs=1e-6)
    worker = m.GridWorker.objects.filter(grid_id=report.case.grid_id).first()
    cases.case_dispatch(case_id=report.case_id, actor=COMMANDER, worker_id=worker.id,
                        recommendation={"recommended": None})
    cases.case_handle(case_id=report.case_id, actor=COMMANDER, note="已清理")
    cases.case_pass(case_id=report.case_id, actor=COMMANDER)
    closed = _one(fmt, rid)
    assert closed["status"] == "closed" and closed["status_notes"] == "已办结" and not closed["expected_datetime"]


def _one(fmt, rid):
    response = client().get(f"{BASE}/requests/{rid}.{fmt}")
    assert response.status_code == 200, response.content.decode()
    if fmt == "json":
        (row,) = response.json()
        return row
    (request,) = xml(response)
    return {child.tag: child.text for child in request}


def test_a_token_leads_to_its_request(key, place):
    answer = new_request(key, place)
    found = client().get(f"{BASE}/tokens/{answer['token']}.json").json()
    assert found == [{"service_request_id": answer["service_request_id"], "token": answer["token"]}]
    assert xml(client().get(f"{BASE}/tokens/{answer['token']}.xml")).findtext("request/service_request_id") == \
        answer["service_request_id"]
    missing = client().get(f"{BASE}/tokens/RNOSUCHTOKEN.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_get_requests_filters_by_service_status_and_dates_within_90_days(key, place, monkeypatch):
    first = new_request(key, place)["service_request_id"]
    second = new_request(key, place, service_code="resident_report")["service_request_id"]
    _close(m.Report.objects.get(pk=int(second)).case)
    ids = lambda response: [r["service_request_id"] for r in response.json()]
    everything = ids(client().get(f"{BASE}/requests.json"))
    assert everything[:2] == [second, first]  # newest first
    assert second not in ids(client().get(f"{BASE}/requests.json", {"service_code": "sanitation"}))
    assert ids(client().get(f"{BASE}/requests.json", {"status": "closed"}))[:1] == [second]
    assert second not in ids(client().get(f"{BASE}/requests.json", {"status": "open"}))
    assert ids(client().get(f"{BASE}/requests.json", {"service_request_id": f"{first},{second}"})) == [second, first]
    now = timezone.localtime()
    recent = {"start_date": (now - timedelta(days=1)).isoformat(), "end_date": (now + timedelta(days=1)).isoformat()}
    assert first in ids(client().get(f"{BASE}/requests.json", recent))
    past = {"start_date": (now - timedelta(days=30)).isoformat(), "end_date": (now - timedelta(days=2)).isoformat()}
    assert first not in ids(client().get(f"{BASE}/requests.json", past))
    too_long = client().get(f"{BASE}/requests.xml", {"start_date": "2026-01-01T00:00:00+08:00",
                                                     "end_date": "2026-06-01T00:00:00+08:00"})
    assert too_long.status_code == 400 and "at most 90" in xml(too_long).findtext("error/description")
    monkeypatch.setattr(open311_reads, "MAX_REQUESTS", 1)  # at most 1,000: here, at most one
    assert len(client().get(f"{BASE}/requests.json").json()) == 1


def test_a_photo_uploaded_as_media_is_shown_once_published(key, place):
    lat, lon = place
    response = post("json", {"api_key": key, "service_code": "facility_damage", "lat": lat, "long": lon,
                             "attribute[facility]": "streetlight", "media": _upload(jpeg())})
    assert response.status_code == 201, response.content.decode()
    rid = response.json()[0]["service_request_id"]
    report = m.Report.objects.get(pk=int(rid))
    assert report.photos == ["1.jpg"] and report.description == "【设施：路灯】"
    assert _one("json", rid)["media_url"] == ""
    assert client().get(f"{BASE}/media/{rid}/1.jpg").status_code == 404  # not published yet
    reports.report_moderate(code=report.code, actor=COMMANDER, action="publish")
    url = _one("json", rid)["media_url"]
    assert url.endswith(f"/open311/v2/media/{rid}/1.jpg") and report.code not in url
    photo = client().get(f"{BASE}/media/{rid}/1.jpg")
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
    assert b"".join(photo.streaming_content).startswith(b"\xff\xd8")


def _upload(data: bytes, name="photo.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")


def test_a_media_url_is_kept_for_staff_and_never_fetched_or_shown(key, place):
    answer = new_request(key, place, media_url="http://10.0.0.1/admin/secret.jpg")
    kept = m.Open311Request.objects.get(report_id=int(answer["service_request_id"]))
    assert kept.media_url == "http://10.0.0.1/admin/secret.jpg"
    reports.report_moderate(code=kept.report.code, actor=COMMANDER, action="publish")
    assert "10.0.0.1" not in client().get(f"{BASE}/requests/{answer['service_request_id']}.json").content.decode()


def test_an_address_string_naming_a_building_or_an_address_id_locates_the_request(key, demo_db):
    building = m.Building.objects.exclude(grid=None).order_by("id").first()
    for location in ({"address_string": building.address}, {"address_string": building.name},
                     {"address_id": str(building.id)}):
        response = post("json", {"api_key": key, "service_code": "resident_report", **location})
        assert response.status_code == 201, (location, response.content.decode())
        report = m.Report.objects.get(pk=int(response.json()[0]["service_request_id"]))
        assert building.geom.contains(report.geom)


def test_a_gcj02_pin_is_taken_with_the_crs_extension(key, place):
    lat, lon = place
    shifted_lon, shifted_lat = gcj02.to_gcj02(lon, lat)
    answer = new_request(key, (shifted_lat, shifted_lon), crs="gcj02")
    report = m.Report.objects.get(pk=int(answer["service_request_id"]))
    assert report.geom.x == pytest.approx(lon, abs=1e-4) and report.geom.y == pytest.approx(lat, abs=1e-4)


# -- what the public never sees ------------------------------------------------------------------


def test_hidden_reports_phones_and_tracking_codes_stay_out_of_the_public_answers(key, place):
    shown = new_request(key, place, description="公开的描述", phone=PHONE)
    hidden = new_request(key, place, description="被隐藏的描述")
    pending = new_request(key, place, description="待审核的描述")
    reports.report_moderate(code=shown["token"], actor=COMMANDER, action="publish")
    reports.report_moderate(code=hidden["token"], actor=COMMANDER, action="hide")
    for fmt in ("json", "xml"):
        text = client().get(f"{BASE}/requests.{fmt}").content.decode()
        assert "公开的描述" in text and "被隐藏的描述" not in text and "待审核的描述" not in text
        assert PHONE not in text and hidden["service_request_id"] not in _ids(fmt, text)
        for code in (shown["token"], hidden["token"], pending["token"]):
            assert code not in text  # the tracking code is the reporter's key to rate and dispute
        assert "CASE-" not in text and "INC-" not in text  # nor the codes that contain it
    assert client().get(f"{BASE}/requests/{hidden['service_request_id']}.json").status_code == 404


def _ids(fmt, text):
    if fmt == "json":
        return [r["service_request_id"] for r in json.loads(text)]
    return [r.findtext("service_request_id") for r in etree.fromstring(text.encode(), parser=_SAFE_XML)]


def test_control_characters_in_a_published_description_still_make_valid_xml(key, place):
    answer = new_request(key, place, description="井盖\x01松动\x1b了")
    reports.report_moderate(code=answer["token"], actor=COMMANDER, action="publish")
    (request,) = xml(client().get(f"{BASE}/requests/{answer['service_request_id']}.xml"))
    assert request.findtext("description") == "井盖松动了"


# -- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, status, words", [
    ({"lat": None, "long": None}, 400, "a location is required"),
    ({"long": None}, 400, "lat and long go together"),
    ({"lat": "north"}, 400, "lat must be a decimal number"),
    ({"lat": "34.0", "long": "113.0"}, 400, "不在本街道"),
    ({"service_code": "pothole"}, 400, "service_code must be one of"),
    ({"service_code": "elder_inactivity"}, 400, "service_code must be one of"),
    ({"api_key": None}, 403, "api_key is required"),
    ({"api_key": "o311_not-a-key"}, 403, "api_key is not valid"),
    ({"description": "x" * 4001}, 400, "4,001 characters long; at most 4,000"),
    ({"description": "a\x00b"}, 400, "NUL"),
    ({"service_code": "facility_damage"}, 400, "attribute[facility] is required"),
    ({"service_code": "facility_damage", "attribute[facility]": "tree"}, 400, "must be one of streetlight"),
    ({"attribute[colour]": "red"}, 400, "has no attribute colour"),
    ({"media_url": "file:///etc/passwd"}, 400, "http or https"),
    ({"phone": "12345"}, 400, "mainland mobile number"),
    ({"crs": "bd09"}, 400, "crs must be wgs84 or gcj02"),
    ({"jurisdiction_id": "110101001"}, 404, "not served here"),
    ({"address_string": "火星路1号", "lat": None, "long": None}, 400, "no geocoder"),
    ({"media": "not a photo"}, 400, "not a JPEG, PNG or WebP"),
    ({"media": "truncated"}, 400, "could not be decoded"),
    ({"media": "huge"}, 413, "at most 8 MB"),
], ids=["no-location", "lat-only", "lat-words", "outside", "unknown-service", "elder-alert", "no-key", "wrong-key",
        "4001-characters", "nul", "required-attribute", "wrong-answer", "unknown-attribute", "file-url", "bad-phone",
        "bad-crs", "other-jurisdiction", "unknown-address", "non-image", "truncated-image", "oversized-image"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_input_is_a_4xx_that_says_why_and_changes_nothing(key, place, change, status, words, fmt):
    lat, lon = place
    form = {"api_key": key, "service_code": "sanitation", "lat": str(lat), "long": str(lon), "description": "x",
            **change}
    photo = {"not a photo": b"GIF89a" + b"\x00" * 100, "truncated": jpeg()[:300],
             "huge": jpeg() + b"\x00" * (photos.MAX_BYTES + 1)}.get(form.pop("media", None))
    if photo is not None:
        form["media"] = _upload(photo)
    form = {name: value for name, value in form.items() if value is not None}
    before = counts(), sorted(photos.folder("x").parent.glob("*"))
    response = post(fmt, form)
    assert response.status_code == status, response.content.decode()
    if fmt == "json":
        (error,) = response.json()
        code, description = error["code"], error["description"]
    else:
        root = xml(response)
        assert root.tag == "errors"
        code, description = int(root.findtext("error/code")), root.findtext("error/description")
    assert code == status and words in description, description
    assert (counts(), sorted(photos.folder("x").parent.glob("*"))) == before


def test_a_revoked_key_is_refused(key, place):
    key_revoke(name="zz12345-app")
    lat, lon = place
    response = post("json", {"api_key": key, "service_code": "sanitation", "lat": lat, "long": lon})
    assert response.status_code == 403 and "not valid" in response.json()[0]["description"]


def test_a_flood_from_one_key_is_a_429_with_retry_after_and_other_keys_go_on(key, place, monkeypatch):
    monkeypatch.setitem(reports.LIMITS_PER_HOUR, "api_key", 3)
    for n in range(3):
        new_request(key, place, device_id=f"phone-{n}")  # many residents through one app
    before = counts()
    lat, lon = place
    refused = post("xml", {"api_key": key, "service_code": "sanitation", "lat": lat, "long": lon,
                           "device_id": "phone-9"})
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3600
    assert "too many reports from this api_key" in xml(refused).findtext("error/description")
    assert counts() == before
    _, other = key_add(name="another-app")
    new_request(other, place)


def test_bodies_that_are_not_forms_and_wrong_methods_are_refused(key):
    as_json = client().post(f"{BASE}/requests.json", json.dumps({"api_key": key}), content_type="application/json")
    assert as_json.status_code == 400 and "form-encoded" in as_json.json()[0]["description"]
    put = client().put(f"{BASE}/requests.json")
    assert put.status_code == 405 and put["Allow"] == "GET, HEAD, POST"
    assert client().post(f"{BASE}/services.xml").status_code == 405
    assert client().get(f"{BASE}/services.html").status_code == 404
    for bad in ({"start_date": "yesterday"}, {"start_date": "2026-12-01T00:00:00"}, {"status": "pending"},
                {"service_code": "pothole"}, {"service_request_id": "12a"}, {"start_date": "0001-01-01"}):
        assert client().get(f"{BASE}/requests.json", bad).status_code == 400, bad
    assert client().get(f"{BASE}/requests.json", {"jurisdiction_id": "nowhere"}).status_code == 404
    for odd in ("²", "9" * 30, "-1"):  # a digit int() refuses, a number too large for bigint, a sign
        assert client().get(f"{BASE}/requests/{odd}.json").status_code == 404
        assert client().get(f"{BASE}/media/{odd}/1.jpg").status_code == 404
        assert client().get(f"{BASE}/requests.json", {"service_request_id": odd}).status_code == 400
        assert post("json", {"api_key": key, "service_code": "sanitation", "address_id": odd}).status_code == 400


# -- the command ---------------------------------------------------------------------------------


def test_the_cli_issues_lists_and_revokes_keys(demo_db, database_url):
    from test_cli import onemap

    added = onemap("open311-key", "add", "cli-test-app", database_url=database_url)
    try:
        assert added.returncode == 0, added.stderr
        secret = next(word for word in added.stdout.split() if word.startswith("o311_"))
        row = m.Open311Key.objects.get(name="cli-test-app")
        assert row.digest != secret and secret not in row.digest and len(row.digest) == 64
        listed = onemap("open311-key", "list", database_url=database_url)
        assert "cli-test-app" in listed.stdout and secret not in listed.stdout and "active" in listed.stdout
        again = onemap("open311-key", "add", "cli-test-app", database_url=database_url)
        assert again.returncode == 1 and "already" in again.stderr
        revoked = onemap("open311-key", "revoke", "cli-test-app", database_url=database_url)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert m.Open311Key.objects.get(name="cli-test-app").revoked_at is not None
    finally:
        m.Open311Key.objects.filter(name="cli-test-app").delete()
