"""The residents' face at /report/ (api/residents): the page, reporting, duplicates, me too, tracking, moderation.

Requests go through Django's test client inside a transaction rolled back at the end of each
test (the database is the real test PostGIS); the browser and the whole server are exercised
in tests/test_report_browser.py and tests/security/.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from test_reports import COMMANDER, _close, _metres, jpeg, made, place  # noqa: F401  (fixtures)

from gis import models as m
from gis.cases import services as cases
from gis.reports import personal
from gis.reports import services as reports
from gis.spatial import gcj02

WRITE = {"HTTP_X_REQUESTED_WITH": "onemap-report"}
PHONE = "13987650123"


@pytest.fixture
def client(made):  # noqa: F811
    return Client(HTTP_HOST="127.0.0.1")


def basic(account) -> dict:
    raw = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {raw}"}


def post_report(client, lon, lat, made, *, photos=(), extra=None, headers=WRITE, **fields):  # noqa: F811
    data = {"category": "sanitation", "description": "路边垃圾没人清", "lon": str(lon), "lat": str(lat),
            "device": "dev-test", **fields}
    files = [_upload(p, n) for n, p in enumerate(photos, start=1)]
    if files:
        data["photo"] = files
    data.update(extra or {})
    response = client.post("/report/api/reports", data, **headers)
    if response.status_code == 201:
        made.append(response.json()["code"])
    return response


def _upload(data: bytes, n: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(f"p{n}.jpg", data, content_type="image/jpeg")


# -- the page --------------------------------------------------------------------------------------


def test_the_page_is_chinese_first_self_contained_and_locked_down(client, demo_db):
    response = client.get("/report/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="zh-CN">' in html and "我要上报" in html and 'name="viewport"' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from another host
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    config = re.search(r'<script type="application/json" id="om-config">(.*?)</script>', html, re.DOTALL).group(1)
    assert '"sanitation"' in config and "elder_inactivity" not in config and '"outline"' in config


# -- a report --------------------------------------------------------------------------------------


def test_a_gcj02_report_with_a_photo_is_stored_in_wgs84_with_its_phone_encrypted(client, made, place):  # noqa: F811
    lon, lat, grid_id = place
    shifted = gcj02.to_gcj02(lon, lat)
    response = post_report(client, *shifted, made, photos=[jpeg()], crs="gcj02", phone="139 8765 0123")
    assert response.status_code == 201, response.content
    receipt = response.json()
    assert response["Location"] == f"/report/t/{receipt['code']}" and receipt["state"] == "已收到"
    assert PHONE not in response.content.decode()
    report = m.Report.objects.get(code=receipt["code"])
    assert _metres((lon, lat), (report.geom.x, report.geom.y)) < 5 and report.grid_id == grid_id
    assert report.photos == ["1.jpg"] and report.channel == "web" and report.moderation == "pending"
    assert personal.decrypt(report.phone_cipher) == PHONE
    assert report.device_digest == personal.digest("device", "dev-test")
    assert report.ip_digest == personal.digest("ip", "127.0.0.1")  # the address the request came from


@pytest.mark.parametrize("change, status, words", [
    ({"lon": "113.0", "lat": "34.0"}, 400, "不在本街道"),
    ({"lon": "east"}, 400, "lon must be a number"),
    ({"lon": "nan"}, 400, "lon must be a number"),
    ({"lat": "1e999"}, 400, "lat must be a number"),
    ({"category": "elder_inactivity"}, 400, "category must be one of"),
    ({"category": ""}, 400, "category is required"),
    ({"description": "a\x00b"}, 400, "NUL"),
    ({"description": "x" * 4001}, 400, "at most 4,000"),
    ({"device": "d\x00"}, 400, "device must be text"),
    ({"phone": "12345"}, 400, "mainland mobile number"),
    ({"crs": "bd09"}, 400, "crs must be wgs84 or gcj02"),
])
def test_a_bad_report_is_a_400_that_says_why_and_leaves_nothing(client, made, place, change, status, words):  # noqa: F811
    fields = {"lon": place[0], "lat": place[1], **change}
    before = m.Report.objects.count()
    response = post_report(client, made=made, **fields)
    assert response.status_code == status, response.content
    assert words in response.json()["error"]
    assert m.Report.objects.count() == before


def test_photos_are_checked_by_count_size_and_content(client, made, place, monkeypatch):  # noqa: F811
    lon, lat, _ = place
    too_many = post_report(client, lon, lat, made, photos=[jpeg()] * 4)
    assert too_many.status_code == 400 and "at most 3" in too_many.json()["error"]
    not_image = post_report(client, lon, lat, made, photos=[b"GIF89a" + b"\x00" * 100])
    assert not_image.status_code == 400 and "not a JPEG, PNG or WebP" in not_image.json()["error"]
    big = post_report(client, lon, lat, made, photos=[jpeg() + b"\x00" * (8 * 1024 * 1024)])
    assert big.status_code == 413 and "8 MB" in big.json()["error"]
    stray = post_report(client, lon, lat, made, extra={"other": _upload(jpeg(), 9)})
    assert stray.status_code == 400 and "photos go in 'photo'" in stray.json()["error"]
    assert not m.Report.objects.exists()


def test_writes_must_come_from_the_page(client, made, place):  # noqa: F811
    lon, lat, _ = place
    bare = post_report(client, lon, lat, made, headers={})
    assert bare.status_code == 403 and "X-Requested-With" in bare.json()["error"]
    foreign = post_report(client, lon, lat, made, headers={**WRITE, "HTTP_ORIGIN": "https://evil.example"})
    assert foreign.status_code == 403
    cross = post_report(client, lon, lat, made, headers={**WRITE, "HTTP_SEC_FETCH_SITE": "cross-site"})
    assert cross.status_code == 403
    same = post_report(client, lon, lat, made, headers={**WRITE, "HTTP_ORIGIN": "http://127.0.0.1",
                                                        "HTTP_SEC_FETCH_SITE": "same-origin"})
    assert same.status_code == 201
    assert client.get("/report/api/reports").status_code == 405


@pytest.mark.parametrize("body, content_type", [
    (b"--xx\r\nContent-Disposition: form-data; name=\"lon\"\r\n\r\n113", "multipart/form-data; boundary=xx"),
    (b"garbage", "multipart/form-data"),  # no boundary
    (b'{"lon": 1}', "application/json"),
    (b"\xff\xfe\x00", "multipart/form-data; boundary=\x00"),
])
def test_a_broken_form_is_a_400(client, demo_db, body, content_type):
    response = client.generic("POST", "/report/api/reports", body, content_type=content_type, **WRITE)
    assert response.status_code == 400, response.content
    assert response.json()["error"]


def test_a_flood_is_429_with_retry_after(client, made, place):  # noqa: F811
    lon, lat, _ = place
    for _ in range(reports.LIMITS_PER_HOUR["device"]):
        assert post_report(client, lon, lat, made, device="flood").status_code == 201
    refused = post_report(client, lon, lat, made, device="flood")
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 3600
    assert "too many reports" in refused.json()["error"]


# -- duplicates, me too, photos ------------------------------------------------------------------------


def test_duplicates_show_published_words_and_photos_without_the_tracking_code(client, made, place):  # noqa: F811
    lon, lat, _ = place
    first = post_report(client, lon, lat, made, photos=[jpeg()]).json()["code"]
    report = m.Report.objects.get(code=first)
    query = {"category": "sanitation", "lon": lon + 0.0001, "lat": lat}
    found = client.get("/report/api/duplicates", query).json()
    assert [d["case"] for d in found["duplicates"]][:1] == [report.case.code]
    assert found["duplicates"][0]["description"] == "" and found["duplicates"][0]["photos"] == []
    assert client.get(f"/report/photos/{report.id}/1.jpg").status_code == 404  # not published yet
    reports.report_moderate(code=first, actor=COMMANDER, action="publish")
    response = client.get("/report/api/duplicates", query)
    shown = response.json()["duplicates"][0]
    assert shown["description"] == "路边垃圾没人清" and shown["photos"] == [f"/report/photos/{report.id}/1.jpg"]
    assert first not in response.content.decode()  # the code is the reporter's key: never shown to others
    assert first not in report.case.code and first not in report.incident.code
    photo = client.get(shown["photos"][0])
    assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg" and photo.content[:3] == b"\xff\xd8\xff"
    gcj = client.get("/report/api/duplicates", {**query, "crs": "gcj02",
                                                "lon": gcj02.to_gcj02(lon + 0.0001, lat)[0],
                                                "lat": gcj02.to_gcj02(lon + 0.0001, lat)[1]}).json()
    assert gcj["point"] == pytest.approx([lon + 0.0001, lat], abs=1e-6) and gcj["duplicates"][0]["case"] == report.case.code
    assert client.get("/report/api/duplicates", {"lon": lon, "lat": lat}).json()["duplicates"] == []


@pytest.mark.parametrize("query, words", [
    ({"category": "nonsense", "lon": "113.6", "lat": "34.7"}, "category must be one of"),
    ({"category": "sanitation", "lon": "x", "lat": "34.7"}, "lon must be a number"),
    ({"category": "sanitation", "lon": "113.6", "lat": "91"}, "lat must be a number"),
    ({"category": "sanitation", "lon": "113.6"}, "lat is required"),
    ({"category": "sanitation\x00", "lon": "113.6", "lat": "34.7"}, "category must be one of"),
])
def test_bad_duplicate_queries_are_400(client, demo_db, query, words):
    response = client.get("/report/api/duplicates", query)
    assert response.status_code == 400 and words in response.json()["error"]


def test_me_too_joins_the_case_with_a_code_of_ones_own(client, made, place):  # noqa: F811
    lon, lat, _ = place
    first = post_report(client, lon, lat, made).json()["code"]
    case = m.Report.objects.get(code=first).case
    response = client.post("/report/api/me-too", {"case": case.code, "device": "neighbour", "phone": PHONE},
                           content_type="application/json", **WRITE)
    assert response.status_code == 201, response.content
    code = response.json()["code"]
    made.append(code)
    joined = m.Report.objects.get(code=code)
    assert joined.kind == "me_too" and joined.case_id == case.id and personal.decrypt(joined.phone_cipher) == PHONE
    progress = client.get(f"/report/api/t/{code}").json()
    assert progress["case"] == case.code and any(s["step"] == "有居民附议" for s in progress["steps"])
    missing = client.post("/report/api/me-too", {"case": "CASE-NONE"}, content_type="application/json", **WRITE)
    assert missing.status_code == 404
    cases.case_reject(case_id=case.id, actor=COMMANDER, reason="重复")
    closed = client.post("/report/api/me-too", {"case": case.code}, content_type="application/json", **WRITE)
    assert closed.status_code == 409 and "rejected" in closed.json()["error"]
    for body in ('{"case": "a\\u0000b"}', "[1]", "{nope", '{"case": 5}'):
        answer = client.post("/report/api/me-too", body, content_type="application/json", **WRITE)
        assert answer.status_code in (400, 404), (body, answer.status_code)


# -- tracking, rating, dispute -----------------------------------------------------------------------


def test_the_tracking_page_and_its_progress(client, made, place):  # noqa: F811
    lon, lat, _ = place
    code = post_report(client, lon, lat, made).json()["code"]
    page = client.get(f"/report/t/{code}")
    assert page.status_code == 200 and code in page.content.decode()
    assert client.get("/report/t/RNOSUCHCODE9").status_code == 404
    assert client.get("/report/api/t/RNOSUCHCODE9").status_code == 404
    assert client.get("/report/api/t/lowercase").status_code == 404
    report = m.Report.objects.get(code=code)
    cases.case_accept(case_id=report.case_id, actor=COMMANDER)
    progress = client.get(f"/report/api/t/{code}").json()
    assert progress["state"] == "已受理" and [s["step"] for s in progress["steps"]] == ["收到上报", "受理"]
    assert "cmd.reports" not in str(progress) and progress["description"] == "路边垃圾没人清"


def test_rating_and_dispute_with_the_code(client, made, place):  # noqa: F811
    lon, lat, _ = place
    code = post_report(client, lon, lat, made).json()["code"]
    report = m.Report.objects.get(code=code)
    early = client.post(f"/report/api/t/{code}/rate", {"rating": 5}, content_type="application/json", **WRITE)
    assert early.status_code == 409
    _close(report.case, at=timezone.now() - timedelta(days=2))
    for bad in ({"rating": 6}, {"rating": "5"}, {"rating": True}, {}):
        answer = client.post(f"/report/api/t/{code}/rate", bad, content_type="application/json", **WRITE)
        assert answer.status_code == 400, bad
    rated = client.post(f"/report/api/t/{code}/rate", {"rating": 4}, content_type="application/json", **WRITE)
    assert rated.status_code == 200 and rated.json()["rating"] == 4
    assert client.post(f"/report/api/t/{code}/dispute", {"reason": ""}, content_type="application/json",
                       **WRITE).status_code == 400
    disputed = client.post(f"/report/api/t/{code}/dispute", {"reason": "垃圾又堆起来了"},
                           content_type="application/json", **WRITE)
    assert disputed.status_code == 200 and disputed.json()["state"] == "已立案"
    assert m.Case.objects.get(pk=report.case_id).reopen_count == 1
    missing = client.post("/report/api/t/RNOSUCHCODE9/dispute", {"reason": "x"}, content_type="application/json",
                          **WRITE)
    assert missing.status_code == 404


def test_a_late_dispute_is_409(client, made, place):  # noqa: F811
    code = post_report(client, *place[:2], made).json()["code"]
    _close(m.Report.objects.get(code=code).case, at=timezone.now() - timedelta(days=8))
    late = client.post(f"/report/api/t/{code}/dispute", {"reason": "晚了"}, content_type="application/json", **WRITE)
    assert late.status_code == 409 and "within 7 days" in late.json()["error"]


# -- moderation ----------------------------------------------------------------------------------------


def test_moderation_is_for_staff_only(client, accounts, demo_db):
    anonymous = client.get("/report/api/moderation")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Basic")
    assert client.get("/report/moderation").status_code == 401
    for who in ("analyst", "worker", "department"):
        assert client.get("/report/api/moderation", **basic(accounts[who])).status_code == 403
        assert client.post("/report/api/moderation/RABC/publish", {}, content_type="application/json",
                           **WRITE, **basic(accounts[who])).status_code == 403
    page = client.get("/report/moderation", **basic(accounts["commander"]))
    assert page.status_code == 200 and "居民上报审核" in page.content.decode()


def test_staff_redact_remove_photos_publish_hide_and_ban(client, made, place, accounts):  # noqa: F811
    lon, lat, _ = place
    code = post_report(client, lon, lat, made, photos=[jpeg(), jpeg()], description="张三 13900001111 门口垃圾",
                       phone=PHONE).json()["code"]
    report = m.Report.objects.get(code=code)
    staff = {**WRITE, **basic(accounts["commander"])}
    queue = client.get("/report/api/moderation", **basic(accounts["administrator"])).json()["reports"]
    mine = next(r for r in queue if r["code"] == code)
    assert mine["has_phone"] and PHONE not in str(queue) and mine["id"] == report.id
    assert [p["url"] for p in mine["photos"]] == [f"/report/photos/{report.id}/1.jpg", f"/report/photos/{report.id}/2.jpg"]
    assert client.get(mine["photos"][1]["url"], **basic(accounts["commander"])).status_code == 200  # staff see it
    assert client.get(mine["photos"][1]["url"]).status_code == 404  # the public does not

    def act(action, **body):
        return client.post(f"/report/api/moderation/{code}/{action}", body, content_type="application/json", **staff)

    assert act("redact", text="某住户门口垃圾", reason="个人信息").status_code == 200
    assert act("remove_photo", photo="2.jpg").status_code == 200
    assert act("remove_photo", photo="9.jpg").status_code == 400
    assert act("redact").status_code == 400  # needs the text
    assert act("nonsense").status_code == 404
    assert act("publish").json()["moderation"] == "public"
    assert client.get(f"/report/photos/{report.id}/1.jpg").status_code == 200
    assert client.get(f"/report/photos/{report.id}/2.jpg").status_code == 404
    assert client.get(f"/report/api/t/{code}").json()["description"] == "某住户门口垃圾"
    public = client.get("/report/api/moderation", {"state": "public"}, **basic(accounts["commander"])).json()
    history = next(r for r in public["reports"] if r["code"] == code)["history"]
    assert [h["action"] for h in history] == ["redact", "remove_photo", "publish"]
    assert history[0]["before"].startswith("张三") and history[0]["actor"] == accounts["commander"].username
    banned = act("ban", reason="恶意")
    assert banned.status_code == 200 and sorted(banned.json()["banned"]) == ["device", "ip", "phone"]
    assert client.get(f"/report/photos/{report.id}/1.jpg").status_code == 404
    tracked = client.get(f"/report/api/t/{code}").json()
    assert tracked["hidden"] and tracked["description"] == "" and tracked["photos"] == []
    again = post_report(client, lon, lat, made, device="other-device", phone=PHONE)  # the phone is banned
    assert again.status_code == 201
    hidden = m.Report.objects.get(code=again.json()["code"])
    assert hidden.banned and hidden.case_id is None and hidden.moderation == "hidden"
    assert client.get("/report/api/moderation", {"state": "bogus"}, **basic(accounts["commander"])).status_code == 400
