"""Residents' reports (gis/reports): located (GCJ-02 too), checked, deduplicated, rated, disputed, moderated, limited.

Every test runs against the demo database inside a transaction rolled back at its end;
the photo files a report writes are removed by the ``made`` fixture.
"""

from __future__ import annotations

import shutil
from datetime import timedelta

import cv2
import numpy as np
import pytest
from django.db import connection
from django.utils import timezone
from test_notifications import receiver  # noqa: F401  (the SMS gateway the test starts)

from core.identity import Identity
from gis import models as m
from gis.cases import services as cases
from gis.notifications.delivery import deliver
from gis.notifications.models import Notification
from gis.reports import personal, photos, selectors
from gis.reports import services as reports
from gis.reports.services import ReportLimited, ReportNotFound, ReportRefused, Sender
from gis.services import ServiceError
from gis.spatial import gcj02

COMMANDER = Identity(role="commander", username="cmd.reports")
PHONE = "13912345678"


@pytest.fixture
def made(rollback):
    """Report codes whose photo folders are removed afterwards (the database is rolled back)."""
    codes: list[str] = []
    yield codes
    for report in m.Report.objects.all():
        codes.append(report.code)
    for code in codes:
        shutil.rmtree(photos.folder(code), ignore_errors=True)


@pytest.fixture
def place(demo_db):
    """A point well inside a level-3 grid (more than 30 m from every other grid)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT ST_X(p), ST_Y(p), g.id FROM grids g,
                   LATERAL (SELECT ST_PointOnSurface(ST_Buffer(g.geom::geography, -60)::geometry) AS p) q
            WHERE g.level = 3 AND NOT ST_IsEmpty(p) ORDER BY g.code LIMIT 1""")
        lon, lat, grid_id = cursor.fetchone()
    return lon, lat, grid_id


def jpeg(width=640, height=480, *, exif: bytes = b"") -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.rectangle(image, (50, 50), (200, 200), (0, 0, 255), -1)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    if exif:  # an APP1 segment right after SOI, as a phone camera writes it
        segment = b"Exif\x00\x00" + exif
        data = data[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + data[2:]
    return data


def submit(lon, lat, made, **kw):
    kw.setdefault("category", "sanitation")
    kw.setdefault("description", "楼下垃圾堆了三天")
    report = reports.report_submit(lon=lon, lat=lat, **kw)
    made.append(report.code)
    return report


# -- GCJ-02 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("wgs, gcj", [
    # (lon, lat) pairs published with the datum's open implementations (Shanghai, Shenzhen, Beijing)
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
])
def test_gcj02_matches_published_points_both_ways(wgs, gcj):
    assert gcj02.to_gcj02(*wgs) == pytest.approx(gcj, abs=1e-9)
    assert gcj02.to_wgs84(*gcj) == pytest.approx(wgs, abs=1e-9)


def test_a_gcj02_pin_is_stored_within_5_m_of_its_wgs84_place(made, place):
    lon, lat, grid_id = place
    shifted = gcj02.to_gcj02(lon, lat)
    # the offset here is hundreds of metres: storing the GCJ-02 numbers as they are would miss the place
    assert _metres((lon, lat), shifted) > 300
    report = submit(*shifted, made, crs="gcj02")
    assert _metres((lon, lat), (report.geom.x, report.geom.y)) < 5
    assert report.grid_id == grid_id and report.case.grid_id == grid_id


def _metres(a, b) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_Distance(ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography,"
                       " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)", [*a, *b])
        return cursor.fetchone()[0]


# -- a new report --------------------------------------------------------------------------------


def test_a_report_opens_an_incident_and_a_case_with_the_phone_encrypted(made, place):
    lon, lat, _ = place
    report = submit(lon, lat, made, photo_files=[jpeg()], sender=Sender(device="d-1", ip="10.0.0.1", phone=PHONE))
    assert report.incident.source == "resident" and report.incident.category == "sanitation"
    assert report.case.state == "reported" and report.case.incident_id == report.incident_id
    assert report.case.events.get().actor == f"report:{report.code}"
    # the case's code is shown to other residents ("me too"): it must not carry the reporter's key
    assert report.code not in report.case.code and report.code not in report.incident.code
    assert report.moderation == "pending" and report.photos == ["1.jpg"]
    stored = bytes(m.Report.objects.values_list("phone_cipher", flat=True).get(pk=report.pk))
    assert PHONE.encode() not in stored and personal.decrypt(stored) == PHONE
    with connection.cursor() as cursor:  # the number is nowhere in the database as text
        cursor.execute("SELECT count(*) FROM reports r WHERE r::text LIKE %s", [f"%{PHONE}%"])
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM incidents i WHERE i::text LIKE %s", [f"%{PHONE}%"])
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("change, message", [
    ({"description": "x" * 4001}, "at most 4,000"),
    ({"category": "elder_inactivity"}, "category must be one of"),
    ({"category": "nonsense"}, "category must be one of"),
    ({"description": "a\x00b"}, "NUL"),
    ({"crs": "bd09"}, "crs must be wgs84 or gcj02"),
    ({"lon": 113.0, "lat": 34.0}, "不在本街道"),  # Zhengzhou's west, outside the subdistrict
    ({"lon": float("nan")}, "lon must be a number"),
    ({"photo_files": [b"GIF89a not a jpeg"]}, "not a JPEG, PNG or WebP"),
    ({"photo_files": [jpeg()[:300]]}, "could not be decoded"),
    ({"photo_files": [jpeg()] * 4}, "at most 3"),
    ({"sender": Sender(phone="12345")}, "mainland mobile number"),
])
def test_bad_reports_are_refused_and_leave_nothing(made, place, change, message):
    lon, lat, _ = place
    before = (m.Report.objects.count(), m.Incident.objects.count(), m.Case.objects.count())
    folders = set(photos.folder("x").parent.glob("*")) if photos.folder("x").parent.exists() else set()
    with pytest.raises(ServiceError, match=message):
        submit(**{"lon": lon, "lat": lat, "made": made, **change})
    assert (m.Report.objects.count(), m.Incident.objects.count(), m.Case.objects.count()) == before
    after = set(photos.folder("x").parent.glob("*")) if photos.folder("x").parent.exists() else set()
    assert after == folders


def test_an_oversized_photo_is_refused_by_size(made, place):
    big = jpeg() + b"\x00" * (photos.MAX_BYTES + 1)
    with pytest.raises(photos.PhotoRefused, match="MB"):
        submit(*place[:2], made, photo_files=[big])


def test_photos_lose_their_exif_and_gps_and_are_scaled_down(made, place):
    raw = jpeg(4000, 3000, exif=b"MM\x00*GPS-LAT-34.7551-SECRET")
    report = submit(*place[:2], made, photo_files=[raw])
    stored = (photos.folder(report.code) / "1.jpg").read_bytes()
    assert b"Exif" not in stored and b"SECRET" not in stored
    image = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) == photos.MAX_SIDE


def test_a_pin_near_a_grid_boundary_is_flagged_for_the_neighbour(made, demo_db):
    with connection.cursor() as cursor:  # a point 10 m inside grid A from its edge with grid B
        cursor.execute("""
            SELECT a.id, b.id, ST_X(p), ST_Y(p) FROM grids a JOIN grids b
              ON a.level = 3 AND b.level = 3 AND a.id < b.id AND ST_Touches(a.geom, b.geom)
                 AND ST_Length(ST_Intersection(a.geom, b.geom)::geography) > 100,
            LATERAL (SELECT ST_ClosestPoint(ST_Buffer(a.geom::geography, -10)::geometry,
                     ST_PointOnSurface(ST_Intersection(a.geom, b.geom))) AS p) q
            ORDER BY a.code LIMIT 1""")
        grid_a, grid_b, lon, lat = cursor.fetchone()
    report = submit(lon, lat, made)
    assert report.grid_id == grid_a and report.case.grid_id == grid_a
    assert m.Case.objects.get(pk=report.case_id).near_grid_id == grid_b
    far = submit(*_inside_point(grid_a), made)
    assert m.Case.objects.get(pk=far.case_id).near_grid_id is None


def _inside_point(grid_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(ST_Buffer(geom::geography, -60)"
                       "::geometry) p FROM grids WHERE id = %s) q", [grid_id])
        return cursor.fetchone()


# -- duplicates and "me too" ---------------------------------------------------------------------


def test_duplicates_are_same_category_within_50_m_and_24_h(made, place):
    lon, lat, _ = place
    first = submit(lon, lat, made, photo_files=[jpeg()])
    now = timezone.now()
    near = selectors.duplicates_near(category="sanitation", lon=lon + 0.0002, lat=lat, at=now)  # ~18 m east
    assert [d["case"] for d in near][:1] == [first.case.code]
    assert near[0]["description"] == "" and near[0]["photos"] == []  # not published yet: nothing of it shown
    reports.report_moderate(code=first.code, actor=COMMANDER, action="publish")
    shown = selectors.duplicates_near(category="sanitation", lon=lon + 0.0002, lat=lat, at=now)[0]
    # photos by the report's id: the tracking code is its holder's key and is never shown to others
    assert shown["description"] == "楼下垃圾堆了三天" and shown["photos"] == [f"{first.id}/1.jpg"]
    assert first.code not in str(shown)
    assert 10 < shown["metres"] < 30
    codes = lambda found: {d["case"] for d in found}  # noqa: E731
    assert first.case.code not in codes(selectors.duplicates_near(category="facility_damage", lon=lon, lat=lat, at=now))
    assert first.case.code not in codes(selectors.duplicates_near(category="sanitation", lon=lon + 0.0008, lat=lat,
                                                                  at=now))  # ~73 m
    assert first.case.code not in codes(selectors.duplicates_near(category="sanitation", lon=lon, lat=lat,
                                                                  at=now + timedelta(hours=25)))


def test_me_too_joins_the_case_and_every_reporter_hears_of_its_closure(made, place, receiver, monkeypatch):  # noqa: F811
    monkeypatch.setenv("ONEMAP_SMS_URL", f"{receiver.base_url}/sms")
    lon, lat, _ = place
    first = submit(lon, lat, made, sender=Sender(phone=PHONE))
    second = reports.report_me_too(case_code=first.case.code, sender=Sender(phone="+86 137-0000-0001"))
    made.append(second.code)
    case = first.case
    assert second.case_id == case.id and second.kind == "me_too"
    assert case.events.filter(action="join").get().data == {"report": second.code}
    _close(case)
    sms = list(Notification.objects.filter(channel="sms", subject_id=case.id, recipient__startswith="report:"))
    assert sorted(n.recipient for n in sms) == sorted([f"report:{first.id}", f"report:{second.id}"])
    with connection.cursor() as cursor:  # the numbers are not in the outbox
        cursor.execute("SELECT count(*) FROM notifications n WHERE n::text LIKE '%%13912345678%%'"
                       " OR n::text LIKE '%%13700000001%%'")
        assert cursor.fetchone()[0] == 0
    for notification in sms:
        assert deliver(notification_id=notification.id).state == "delivered"
    assert sorted(hit.target for hit in receiver.hits if hit.channel == "sms")[-2:] == ["13700000001", PHONE]
    assert any(first.code in hit.body["message"] for hit in receiver.hits if hit.target == PHONE)


def test_me_too_needs_an_open_case(made, place):
    with pytest.raises(ReportNotFound):
        reports.report_me_too(case_code="CASE-NOPE")
    first = submit(*place[:2], made)
    cases.case_reject(case_id=first.case_id, actor=COMMANDER, reason="重复")
    with pytest.raises(cases.CaseRefused, match="not possible for a case that is rejected"):
        reports.report_me_too(case_code=first.case.code)


def test_a_duplicate_case_is_merged_with_its_reporters(made, place):
    lon, lat, _ = place
    kept = submit(lon, lat, made)
    duplicate = submit(lon + 0.0001, lat, made)
    cases.case_merge(case_id=duplicate.case_id, into_case_id=kept.case_id, actor=COMMANDER, reason="同一处垃圾")
    gone = m.Case.objects.get(pk=duplicate.case_id)
    assert gone.state == "rejected" and gone.merged_into_id == kept.case_id
    assert m.Report.objects.get(pk=duplicate.pk).case_id == kept.case_id
    assert kept.case.events.filter(action="join").get().data["merged"] == gone.code
    cases.case_accept(case_id=kept.case_id, actor=COMMANDER)
    cases.case_file(case_id=kept.case_id, actor=COMMANDER)
    other = submit(lon, lat + 0.0001, made)
    with pytest.raises(cases.CaseRefused, match="only from reported, accepted"):  # a filed case is not merged away
        cases.case_merge(case_id=kept.case_id, into_case_id=other.case_id, actor=COMMANDER, reason="x")


# -- rating and dispute --------------------------------------------------------------------------


def _close(case: m.Case, at=None):
    worker = m.GridWorker.objects.filter(grid_id=case.grid_id).first()
    for step in (lambda: cases.case_accept(case_id=case.id, actor=COMMANDER, at=at),
                 lambda: cases.case_file(case_id=case.id, actor=COMMANDER, at=at),
                 lambda: cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=worker.id, at=at,
                                             recommendation={"recommended": None}),
                 lambda: cases.case_handle(case_id=case.id, actor=COMMANDER, note="已清理", at=at),
                 lambda: cases.case_pass(case_id=case.id, actor=COMMANDER, at=at)):
        step()


def test_the_reporter_rates_and_disputes_within_7_days(made, place):
    first = submit(*place[:2], made)
    with pytest.raises(cases.CaseRefused):
        reports.report_rate(code=first.code, rating=5)  # not closed yet
    closed_at = timezone.now() - timedelta(days=3)
    _close(first.case, at=closed_at)
    progress = selectors.report_progress(code=first.code)
    assert progress["state"] == "已办结" and progress["may_rate"] and progress["may_dispute"]
    assert "cmd.reports" not in str(progress)  # steps say what and when, never who
    reports.report_rate(code=first.code, rating=2)
    assert m.Case.objects.get(pk=first.case_id).rating == 2
    with pytest.raises(ServiceError, match="1 to 5"):
        reports.report_rate(code=first.code, rating=6)
    case = reports.report_dispute(code=first.code, reason="垃圾又堆起来了")
    assert case.state == "filed" and case.reopen_count == 1
    assert case.events.order_by("-id").first().role == "reporter"


def test_a_dispute_after_7_days_is_refused(made, place):
    first = submit(*place[:2], made)
    _close(first.case, at=timezone.now() - timedelta(days=8))
    with pytest.raises(cases.CaseRefused, match="within 7 days"):
        reports.report_dispute(code=first.code, reason="晚了")
    assert m.Case.objects.get(pk=first.case_id).state == "closed"
    with pytest.raises(ReportNotFound):
        reports.report_dispute(code="RNOSUCHCODE1", reason="x")


# -- abuse ---------------------------------------------------------------------------------------


def test_a_flood_from_one_device_is_limited_without_touching_others(made, place):
    lon, lat, _ = place
    for _ in range(reports.LIMITS_PER_HOUR["device"]):
        submit(lon, lat, made, sender=Sender(device="flooder"))
    before = m.Report.objects.count()
    with pytest.raises(ReportLimited) as refused:
        submit(lon, lat, made, sender=Sender(device="flooder"))
    assert 0 < refused.value.retry_after_s <= 3600 and m.Report.objects.count() == before
    submit(lon, lat, made, sender=Sender(device="someone-else"))  # others go on
    later = timezone.now() + timedelta(hours=1, minutes=1)
    submit(lon, lat, made, sender=Sender(device="flooder"), at=later)  # and the flooder after an hour


def test_a_banned_sender_is_hidden_and_never_dispatched(made, place):
    lon, lat, _ = place
    first = submit(lon, lat, made, sender=Sender(device="troll", phone=PHONE))
    reports.ban_from_report(code=first.code, actor=COMMANDER, reason="恶意上报")
    assert m.Report.objects.get(pk=first.pk).moderation == "hidden"
    cases_before = m.Case.objects.count()
    again = submit(lon, lat, made, sender=Sender(device="new-device", phone=PHONE))  # the phone is banned
    assert again.banned and again.moderation == "hidden" and again.case_id is None and again.incident_id is None
    assert m.Case.objects.count() == cases_before
    with pytest.raises(ServiceError, match="banned"):
        reports.report_moderate(code=again.code, actor=COMMANDER, action="publish")


def test_moderation_redacts_text_and_photos_with_a_history(made, place):
    first = submit(*place[:2], made, description="张三 13912345678 家门口垃圾", photo_files=[jpeg(), jpeg()])
    reports.report_moderate(code=first.code, actor=COMMANDER, action="redact", text="某住户家门口垃圾",
                            reason="个人信息")
    reports.report_moderate(code=first.code, actor=COMMANDER, action="remove_photo", photo="2.jpg")
    reports.report_moderate(code=first.code, actor=COMMANDER, action="publish")
    report = m.Report.objects.get(pk=first.pk)
    assert report.description == "某住户家门口垃圾" and report.incident.description == "某住户家门口垃圾"
    assert report.photos == ["1.jpg"] and report.moderation == "public"
    queue = selectors.moderation_queue(state="public")
    mine = next(r for r in queue if r["code"] == first.code)
    assert [s["action"] for s in mine["history"]] == ["redact", "remove_photo", "publish"]
    assert mine["history"][0]["before"].startswith("张三")
