"""The phone's APIs (/m/api/…) and the idempotent case actions it sends: who may ask, what they see, replays, bad input.

Requests run in this process (Django's test client) against the test database, as in
tests/test_cases_api.py; cases are made through the services and removed afterwards. The
browser test with the network cut is tests/test_mobile_browser.py.
"""

from __future__ import annotations

import base64
import json
import threading

import cv2
import numpy as np
import pytest
import requests
from django.test import Client

from api.live import Message
from api.mobile.feed import phone_filter
from core.identity import Identity
from gis import models as m
from gis.accounts.services import grid_worker_bind
from gis.care.private import private_open
from gis.cases import services as cases
from gis.incidents.services import incident_create

COMMANDER = Identity(role="commander", username="cmd.phone")
ROUTES = ("/m/api/me", "/m/api/tasks", "/m/api/care-alerts")


def client(account=None) -> Client:
    if account is None:
        return Client(HTTP_HOST="127.0.0.1")
    raw = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {raw}")


def post(account, url: str, body=None, *, key: str | None = None):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client(account).post(url, data=json.dumps(body if body is not None else {}),
                                content_type="application/json", **extra)


@pytest.fixture
def bound(accounts, own_grid):
    """The grid worker's user bound to the first worker of their grid, on duty; unbound afterwards."""
    worker = m.GridWorker.objects.filter(grid=own_grid).order_by("code").first()
    before = (worker.on_duty, worker.last_position, worker.last_seen_at)
    grid_worker_bind(username=accounts["worker"].username, worker_code=worker.code)
    m.GridWorker.objects.filter(pk=worker.pk).update(on_duty=True)
    worker.refresh_from_db()
    yield worker
    m.GridWorker.objects.filter(pk=worker.pk).update(user=None, on_duty=before[0], last_position=before[1],
                                                     last_seen_at=before[2])


@pytest.fixture
def dispatched(demo_db):
    """Cases dispatched to a worker (``dispatched(grid, worker, category=…, title=…)``), removed afterwards."""
    made = []

    def make(grid: m.Grid, worker: m.GridWorker, *, category: str = "sanitation", title: str = "",
             sensor=None) -> m.Case:
        point = grid.geom.point_on_surface
        incident = incident_create(lon=point.x, lat=point.y, category=category, source="staff", title=title,
                                   code=f"INC-PHONE-{grid.code}-{len(made)}", sensor=sensor)
        made.append(incident.id)
        case = cases.case_open(incident_id=incident.id)
        for action in ("accept", "file"):
            getattr(cases, f"case_{action}")(case_id=case.id, actor=COMMANDER)
        return cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=worker.id)

    yield make
    m.Incident.objects.filter(id__in=made).delete()


# -- who may ask ------------------------------------------------------------------------


def test_the_page_is_open_and_every_api_asks_to_sign_in(accounts):
    page = client().get("/m/")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert "网格员" in page.content.decode() and "/vendor/leaflet/leaflet.js" in page.content.decode()
    for route in ROUTES + ("/m/api/position", "/m/api/photos"):
        answer = client().get(route) if route in ROUTES else client().post(route)
        assert answer.status_code == 401 and answer["WWW-Authenticate"].startswith("Basic"), route
        for role in ("analyst", "commander", "department"):
            assert client(accounts[role]).get(route).status_code == 403, (route, role)
    assert client(accounts["worker"]).post("/m/api/tasks").status_code == 405


def test_me_is_the_workers_own_grid_with_its_buildings_only(accounts, bound, own_grid):
    me = client(accounts["worker"]).get("/m/api/me").json()
    assert me["worker"]["code"] == bound.code and me["grid"]["code"] == own_grid.code
    ids = {f["id"] for f in me["grid"]["buildings"]["features"]}
    assert ids == set(m.Building.objects.filter(grid=own_grid).values_list("id", flat=True)) and ids


# -- tasks ------------------------------------------------------------------------------


def test_tasks_are_the_workers_own_in_their_grid_most_urgent_first(accounts, bound, own_grid, other_grid, dispatched):
    calm = dispatched(own_grid, bound, category="facility_damage", title="路灯不亮")
    urgent = dispatched(own_grid, bound, category="fire_smoke", title="<img src=x onerror=alert(1)>")
    late = dispatched(own_grid, bound, category="sanitation", title="垃圾满溢")
    m.Case.objects.filter(pk=late.id).update(breached_at=late.due_at)
    someone_else = m.GridWorker.objects.filter(grid=own_grid).exclude(pk=bound.pk).first()
    not_mine = dispatched(own_grid, someone_else)
    neighbour = dispatched(other_grid, bound)  # a neighbouring grid's case sent to this worker: not theirs to see
    rows = client(accounts["worker"]).get("/m/api/tasks").json()["tasks"]
    ids = [row["id"] for row in rows]
    assert not_mine.id not in ids and neighbour.id not in ids
    assert ids.index(late.id) < ids.index(urgent.id) < ids.index(calm.id)  # overdue, then the soonest due
    row = rows[ids.index(urgent.id)]
    assert row["title"] == "<img src=x onerror=alert(1)>" and row["state"] == "dispatched"
    assert row["allowed"] == ["acknowledge", "return", "handle", "request_deferral", "request_escalation"]


def test_another_grids_task_is_not_found_for_every_method_with_a_key(accounts, bound, other_grid, dispatched):
    theirs = dispatched(other_grid, m.GridWorker.objects.filter(grid=other_grid).first())
    before = m.Case.objects.filter(pk=theirs.id).values().get()
    for action in ("acknowledge", "arrive", "handle", "return", "request_escalation"):
        for method in ("post", "get", "put", "delete"):
            answer = client(accounts["worker"]).generic(
                method.upper(), f"/api/cases/{theirs.id}/{action}", json.dumps({"note": "x", "position": [113.6, 34.7]}),
                content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"k-{action}-{method}-0001")
            assert answer.status_code == 404, (action, method, answer.status_code)
    assert m.Case.objects.filter(pk=theirs.id).values().get() == before
    assert not m.IdempotentRequest.objects.filter(key__startswith="k-").exists()


# -- exactly once -----------------------------------------------------------------------


def test_a_replayed_action_is_applied_once_and_answered_as_the_first_time(accounts, bound, own_grid, dispatched):
    case = dispatched(own_grid, bound)
    url = f"/api/cases/{case.id}/acknowledge"
    first = post(accounts["worker"], url, {"position": [113.66, 34.75]}, key="phone-ack-0001")
    again = post(accounts["worker"], url, {"position": [113.66, 34.75]}, key="phone-ack-0001")
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert m.CaseEvent.objects.filter(case_id=case.id, action="acknowledge").count() == 1
    # the same key for something else is refused, and changes nothing
    other = post(accounts["worker"], f"/api/cases/{case.id}/arrive", {"position": [113.66, 34.75]},
                 key="phone-ack-0001")
    assert other.status_code == 422 and "another request" in other.json()["error"]
    assert not m.CaseEvent.objects.filter(case_id=case.id, action="arrive").exists()
    # a refusal is an answer too: replayed as it was, with nothing applied in between
    refused = post(accounts["worker"], f"/api/cases/{case.id}/handle", {}, key="phone-handle-0001")
    assert refused.status_code == 400 and "needs note" in refused.json()["error"]
    assert post(accounts["worker"], f"/api/cases/{case.id}/handle", {}, key="phone-handle-0001").content == \
        refused.content
    assert m.Case.objects.get(pk=case.id).state == "acknowledged"


@pytest.mark.parametrize("key", ["short", "a" * 101, "has space!", "ключ-ключ-ключ"])
def test_a_malformed_key_is_a_400_and_nothing_happens(accounts, bound, own_grid, dispatched, key):
    case = dispatched(own_grid, bound)
    raw = base64.b64encode(f"{accounts['worker'].username}:{accounts['worker'].token}".encode()).decode()
    answer = Client(HTTP_HOST="127.0.0.1").post(
        f"/api/cases/{case.id}/acknowledge", data="{}", content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {raw}", HTTP_IDEMPOTENCY_KEY=key.encode("utf-8").decode("latin-1"))
    assert answer.status_code == 400 and "Idempotency-Key" in answer.json()["error"]
    assert m.Case.objects.get(pk=case.id).state == "dispatched"


def test_the_same_key_sent_twice_at_once_is_applied_once(live_server, accounts, bound, own_grid, dispatched):
    """Two copies racing (a phone retrying while the first is still on its way): one applies, both get its answer."""
    case = dispatched(own_grid, bound)
    answers = []

    def send():
        answers.append(requests.post(f"{live_server}/api/cases/{case.id}/acknowledge", json={},
                                     headers={"Idempotency-Key": "race-0000-0001"}, auth=accounts["worker"].auth,
                                     timeout=30))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 3
    assert m.CaseEvent.objects.filter(case_id=case.id, action="acknowledge").count() == 1


# -- position ---------------------------------------------------------------------------


@pytest.mark.parametrize("body, words", [
    ({}, "position must be [lon, lat]"),
    ({"position": "113,34"}, "position must be [lon, lat]"),
    ({"position": [113.6]}, "position must be [lon, lat]"),
    ({"position": [200, 34.7]}, "lon in -180…180"),
    ({"position": [113.6, -91]}, "lat in -90…90"),
    ({"position": [True, 34.7]}, "position must be [lon, lat]"),
    ({"position": [113.6, 34.7], "at": "yesterday"}, "ISO 8601"),
    ({"position": [113.6, 34.7], "at": "2026-12-07T10:00:00"}, "offset"),
    ({"position": [113.6, 34.7], "at": "2099-01-01T00:00:00+08:00"}, "in the future"),
])
def test_a_bad_position_is_a_400_that_says_why_and_changes_nothing(accounts, bound, body, words):
    answer = post(accounts["worker"], "/m/api/position", body)
    assert answer.status_code == 400 and words in answer.json()["error"], answer.json()
    bound.refresh_from_db()
    assert m.GridWorker.objects.get(pk=bound.pk).last_seen_at == bound.last_seen_at


def test_nan_in_a_position_is_a_400(accounts, bound):
    answer = client(accounts["worker"]).post("/m/api/position", data=b'{"position": [NaN, 34.7]}',
                                             content_type="application/json")
    assert answer.status_code == 400


def test_a_shared_position_feeds_dispatch_and_only_on_duty(accounts, bound, own_grid):
    from gis.spatial.routing import recommend_workers

    point = own_grid.geom.point_on_surface
    answer = post(accounts["worker"], "/m/api/position", {"position": [point.x, point.y]})
    assert answer.status_code == 200 and answer.json()["worker"] == bound.code
    bound.refresh_from_db()
    assert (round(bound.last_position.x, 9), round(bound.last_position.y, 9)) == (round(point.x, 9), round(point.y, 9))
    ranked = recommend_workers(lon=point.x, lat=point.y, grid_id=own_grid.id, limit=50)
    mine = next(c for c in ranked.candidates if c.worker_id == bound.id)
    assert mine.position_known and mine.straight_m < 1
    m.GridWorker.objects.filter(pk=bound.pk).update(on_duty=False)
    off = post(accounts["worker"], "/m/api/position", {"position": [point.x, point.y]})
    assert off.status_code == 409 and "off duty" in off.json()["error"]


def test_an_account_without_a_worker_cannot_share_a_position(accounts):
    answer = post(accounts["worker2"], "/m/api/position", {"position": [113.66, 34.75]})
    assert answer.status_code == 409 and "not bound to a grid worker" in answer.json()["error"]


# -- photos -----------------------------------------------------------------------------


def _jpeg_with_exif(width=64, height=48) -> bytes:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 1] = 200
    ok, jpeg = cv2.imencode(".jpg", image)
    # an APP1 Exif segment right after SOI, as a phone writes one (with its GPS position)
    exif = b"Exif\x00\x00" + b"MM\x00\x2a\x00\x00\x00\x08" + b"GPS 34.75N 113.66E" * 4
    app1 = b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif
    return jpeg.tobytes()[:2] + app1 + jpeg.tobytes()[2:]


def upload(account, data: bytes, content_type: str = "image/jpeg"):
    return client(account).post("/m/api/photos", data=data, content_type=content_type)


def test_a_photo_is_reencoded_without_exif_and_kept_once(accounts, bound, tmp_path, monkeypatch):
    monkeypatch.setenv("ONEMAP_PHOTO_DIR", str(tmp_path))
    data = _jpeg_with_exif()
    assert b"Exif" in data and cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
    first = upload(accounts["worker"], data, "application/octet-stream")  # the content decides, not the type
    assert first.status_code == 201, first.json()
    stored = first.json()
    assert (stored["width"], stored["height"]) == (64, 48)
    kept = (tmp_path / f"{stored['photo']}.jpg").read_bytes()
    assert kept[:3] == b"\xff\xd8\xff" and b"Exif" not in kept and b"GPS" not in kept
    assert upload(accounts["worker"], data).json()["photo"] == stored["photo"]  # a replay: the same file
    assert len(list(tmp_path.glob("*.jpg"))) == 1
    served = client(accounts["commander"]).get(stored["url"])
    assert served.status_code == 200 and served.content == kept and served["Content-Type"] == "image/jpeg"
    assert client(accounts["analyst"]).get(stored["url"]).status_code == 403
    assert client(accounts["commander"]).get("/m/api/photos/" + "0" * 64).status_code == 404
    assert client(accounts["commander"]).get("/m/api/photos/..%2F..%2Fsecret_key").status_code == 404


def test_a_large_photo_is_shrunk_and_png_is_taken(accounts, bound, tmp_path, monkeypatch):
    monkeypatch.setenv("ONEMAP_PHOTO_DIR", str(tmp_path))
    ok, png = cv2.imencode(".png", np.full((3000, 2500, 3), 90, dtype=np.uint8))
    answer = upload(accounts["worker"], png.tobytes(), "image/png")
    assert answer.status_code == 201 and (answer.json()["width"], answer.json()["height"]) == (1707, 2048)


@pytest.mark.parametrize("data, status, words", [
    (b"", 400, "the body is empty"),
    (b"<svg onload=alert(1)></svg>", 400, "not a JPEG, PNG or WebP"),
    (b"GIF89a" + b"\x00" * 100, 400, "not a JPEG, PNG or WebP"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 200, 400, "cannot be decoded"),
    (b"\xff\xd8\xff" + b"\x00" * (8 * 1024 * 1024), 413, "at most 8 MiB"),
])
def test_a_bad_photo_is_refused_with_a_clear_message_and_nothing_kept(accounts, bound, tmp_path, monkeypatch,
                                                                      data, status, words):
    monkeypatch.setenv("ONEMAP_PHOTO_DIR", str(tmp_path))
    answer = upload(accounts["worker"], data)
    assert answer.status_code == status and words in answer.json()["error"], answer.json()
    assert not list(tmp_path.iterdir())


# -- care alerts ------------------------------------------------------------------------


def test_the_person_behind_an_alert_is_shown_to_the_worker_of_its_case_only_and_logged(accounts, bound, own_grid,
                                                                                      dispatched):
    subject = m.CareSubject.objects.filter(grid=own_grid, sensors__isnull=False).first()
    sensor = subject.sensors.first()
    alert = dispatched(own_grid, bound, category="elder_inactivity", title="独居老人48小时未开门", sensor=sensor)
    before = m.AccessLogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    rows = client(accounts["worker"]).get("/m/api/care-alerts").json()["alerts"]
    mine = next(r for r in rows if r["case_id"] == alert.id)
    private = private_open(subject_id=subject.id, sealed=subject.private.sealed)
    assert mine["person"] == {"name": private["full_name"],
                              "flat": f"{private['unit']}单元{private['floor']}层{private['room']}室"}
    assert all(r["person"] is None for r in rows if r["case_id"] != alert.id)
    assert all("sensor_id" not in r for r in rows)
    logged = m.AccessLogEntry.objects.filter(id__gt=before, username=accounts["worker"].username)
    assert list(logged.values_list("collection", "record_id", "route")) == [
        ("care_subjects", str(subject.id), "/m/api/care-alerts")]
    # another worker of the same grid sees the alert, not the person
    other_worker = m.GridWorker.objects.filter(grid=own_grid).exclude(pk=bound.pk).first()
    m.Case.objects.filter(pk=alert.id).update(assignee=other_worker)
    rows = client(accounts["worker"]).get("/m/api/care-alerts").json()["alerts"]
    assert next(r for r in rows if r["case_id"] == alert.id)["person"] is None


def test_care_alerts_are_of_the_workers_grid_only(accounts, bound, own_grid, other_grid, dispatched):
    theirs = dispatched(other_grid, m.GridWorker.objects.filter(grid=other_grid).first(), category="elder_inactivity")
    rows = client(accounts["worker"]).get("/m/api/care-alerts").json()["alerts"]
    assert theirs.id not in {r["case_id"] for r in rows}
    codes = set(m.Incident.objects.filter(id__in=[r["incident_id"] for r in rows]).values_list("grid__code", flat=True))
    assert codes <= {own_grid.code}


# -- the live feed's cut ----------------------------------------------------------------


def test_a_phone_hears_of_its_grid_and_its_worker_only():
    keep = phone_filter(grid_id=7, worker_code="GW-001")
    mine = Message("incident", json.dumps({"op": "update", "id": 5, "feature": {"properties": {
        "grid_id": 7, "title": "x"}}}), 10)
    theirs = Message("incident", json.dumps({"op": "update", "id": 6, "feature": {"properties": {"grid_id": 8}}}), 11)
    gone = Message("incident", json.dumps({"op": "delete", "id": 6, "feature": None}), 12)
    told = Message("notification", json.dumps({"recipient": "worker:GW-001", "title": "新派遣案件"}), 13)
    not_told = Message("notification", json.dumps({"recipient": "command-centre", "title": "案件已超时"}), 14)
    assert json.loads(keep(mine).data) == {"op": "update", "id": 5} and keep(mine).id == 10
    assert keep(theirs) is None and keep(gone) is None and keep(not_told) is None
    assert keep(told) is told
    assert keep(Message("reset", "{}", 15)).event == "reset"


# -- binding an account to its worker ------------------------------------------------------


def test_binding_refuses_another_grids_worker_and_other_roles(accounts, own_grid, other_grid):
    from gis.services import ServiceError

    theirs = m.GridWorker.objects.filter(grid=other_grid).first()
    with pytest.raises(ServiceError, match="both must be the same level-3 grid"):
        grid_worker_bind(username=accounts["worker"].username, worker_code=theirs.code)
    with pytest.raises(ServiceError, match="is not a grid worker"):
        grid_worker_bind(username=accounts["commander"].username, worker_code=theirs.code)
    with pytest.raises(ServiceError, match="no grid worker with code"):
        grid_worker_bind(username=accounts["worker"].username, worker_code="GW-NOPE")
    assert not m.GridWorker.objects.filter(user__username=accounts["worker"].username).exists()


def test_a_case_of_the_next_grid_dispatched_to_this_worker_is_on_their_phone_to_read_not_to_edit(
        accounts, bound, dispatched, other_grid):
    """Dispatch sends the nearest worker by walking time, who may belong to the next grid: the case and its
    incident are theirs to read (row-level security), their writes stay fenced to their own grid."""
    from api.auth import clear_identity_cache

    clear_identity_cache()  # the binding is new: the identity must carry the worker
    case = dispatched(other_grid, bound, title="邻格派来的任务")
    tasks = client(accounts["worker"]).get("/m/api/tasks").json()["tasks"]
    assert case.code in {task["code"] for task in tasks}
    assert client(accounts["worker"]).get(f"/api/cases/{case.id}").status_code == 200
    assert client(accounts["worker"]).get(f"/ogc/collections/incidents/items/{case.incident_id}").status_code == 200
    taken = post(accounts["worker"], f"/api/cases/{case.id}/acknowledge", {"position": [113.66, 34.75]})
    assert taken.status_code == 200, taken.content  # the case's own actions are the assignee's
    gone = client(accounts["worker"]).delete(f"/ogc/collections/incidents/items/{case.incident_id}")
    assert gone.status_code in (403, 404, 405) and m.Incident.objects.filter(pk=case.incident_id).exists()
    # the next grid's own worker still sees it; once it goes to someone else, this worker no longer does
    assert client(accounts["worker2"]).get(f"/api/cases/{case.id}").status_code == 200
    other = m.GridWorker.objects.filter(grid=other_grid).order_by("code").first()
    cases.case_return(case_id=case.id, actor=COMMANDER, reason="换人")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=other.id)
    assert client(accounts["worker"]).get(f"/api/cases/{case.id}").status_code == 404
    assert case.code not in {t["code"] for t in client(accounts["worker"]).get("/m/api/tasks").json()["tasks"]}
