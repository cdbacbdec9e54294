"""The HTTP ingest, ``POST /api/sensors/{code}/events``: the device's own credentials, clear refusals, idempotent by seq."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

PREFIX = "TST-HTTP-"


@pytest.fixture(scope="module")
def sensors(demo_db):
    """Two sensors with passwords, the first with a person at home; removed afterwards."""
    from django.contrib.gis.geos import Point

    from gis.care.credentials import credential_issue
    from gis.models import CareSubject, DeviceCredential, Sensor

    def clean():
        Sensor.objects.filter(code__startswith=PREFIX).delete()
        CareSubject.objects.filter(code__startswith=PREFIX).delete()
        DeviceCredential.objects.filter(username__startswith=PREFIX).delete()

    clean()
    where = Point(113.66, 34.75, srid=4326)
    person = CareSubject.objects.create(code=f"{PREFIX}P", age_band="80-84", geom=where, synthetic=True)
    made = {}
    for name, subject in (("A", person), ("B", None)):
        code = PREFIX + name
        Sensor.objects.create(code=code, kind="door_magnet", care_subject=subject, geom=where, synthetic=True)
        made[name] = (code, credential_issue(code=code))
    yield made
    clean()


def post(code: str, body, *, auth: tuple[str, str] | None = None, bearer: str | None = None, raw: bytes | None = None):
    headers = {}
    if auth:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    if bearer:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    data = raw if raw is not None else json.dumps(body)
    return Client(HTTP_HOST="127.0.0.1").post(f"/api/sensors/{code}/events", data=data, content_type="application/json", **headers)


def event(seq: int, type: str = "door_open", ts: datetime | None = None, **extra) -> dict:
    return {"ts": (ts or datetime.now(UTC)).isoformat(), "type": type, "seq": seq, **extra}


def test_a_device_posts_its_events_and_a_repeat_is_a_duplicate(sensors):
    from gis.models import CareSubject, SensorEvent

    code, password = sensors["A"]
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    answer = post(code, [event(1, ts=ts), event(2, "heartbeat", ts)], auth=(code, password))
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"inserted": 2, "duplicates": 0, "rejected": 0, "gateways": 0}
    again = post(code, event(1, ts=ts), bearer=password)
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert SensorEvent.objects.filter(sensor__code=code).count() == 2
    assert CareSubject.objects.get(code=f"{PREFIX}P").last_activity_at == ts


@pytest.mark.parametrize("who, status, words", [
    ("nobody", 401, "Sign in as the device"),
    ("wrong password", 401, "Sign in as the device"),
    ("staff token", 401, "Sign in as the device"),
    ("other device", 403, "may post only its own events"),
])
def test_only_the_device_itself_may_post(sensors, accounts, who, status, words):
    from gis.models import SensorEvent

    code, password = sensors["A"]
    other, other_password = sensors["B"]
    auth = {"nobody": None, "wrong password": (code, password + "x"),
            "staff token": accounts["administrator"].auth, "other device": (other, other_password)}[who]
    answer = post(code, event(99), auth=auth)
    assert answer.status_code == status and words in answer.json()["error"], answer.content
    if status == 401:
        assert answer["WWW-Authenticate"].startswith("Basic")
    assert not SensorEvent.objects.filter(sensor__code=code, seq=99).exists()


@pytest.mark.parametrize("body, words", [
    (b"{not json", "not JSON"),
    (b"[]", "send 1 to 500 events"),
    (json.dumps([event(i) for i in range(501)]).encode(), "send 1 to 500 events"),
    (b'"a string"', "must be a JSON object"),
    (json.dumps({"type": "door_open", "seq": 5}).encode(), "ts is missing"),
    (json.dumps([{"ts": "2026-01-01T00:00:00Z", "type": "door_open", "seq": 5},
                 {"ts": "2026-01-01T00:00:00", "type": "door_open", "seq": 6}]).encode(), "event 1: ts"),
    (json.dumps(event(5, "battery")).encode(), "needs battery_pct"),
    (json.dumps(event(5, ts=datetime.now(UTC) + timedelta(days=1))).encode(), "in the future"),
    (json.dumps(event(5, note="a\u0000b")).encode(), "NUL"),
    (b"[" * 100000, "nested too deep"),
])
def test_a_bad_body_is_a_400_that_says_why_and_stores_nothing(sensors, body, words):
    from gis.models import SensorEvent

    code, password = sensors["B"]
    answer = post(code, None, auth=(code, password), raw=body)
    assert answer.status_code == 400 and words in answer.json()["error"], answer.content
    assert not SensorEvent.objects.filter(sensor__code=code, seq__in=[5, 6]).exists()


def test_unknown_sensor_wrong_method_and_too_big_a_body(sensors):
    code, password = sensors["B"]
    assert post("NO-SUCH-SENSOR", event(1), auth=(code, password)).status_code in (401, 403)
    assert post("bad/code", event(1)).status_code == 404
    assert Client(HTTP_HOST="127.0.0.1").get(f"/api/sensors/{code}/events").status_code == 405
    big = post(code, None, auth=(code, password), raw=b" " * (300 * 1024))
    assert big.status_code == 413


def test_a_device_whose_sensor_is_gone_is_a_404(sensors):
    from django.contrib.gis.geos import Point

    from gis.care.credentials import credential_issue
    from gis.models import Sensor

    code = PREFIX + "GONE"
    Sensor.objects.create(code=code, kind="motion", geom=Point(113.66, 34.75, srid=4326), synthetic=True)
    password = credential_issue(code=code)
    Sensor.objects.filter(code=code).delete()
    answer = post(code, event(1), auth=(code, password))
    assert answer.status_code == 404 and "no sensor" in answer.json()["error"]
