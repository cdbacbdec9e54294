"""Personal data at rest: sealed in PostgreSQL, opened only with the key, never logged, every read logged.

The people are the demo's (synthetic); the key is the test run's (``ONEMAP_PII_KEY`` or
``.var/pii_key`` under ``ONEMAP_VAR_DIR``).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import time

import pytest
import requests

from gis import models as m
from gis import personal
from gis.care.private import SEALED_FIELDS, private_open, private_seal
from gis.reports import personal as phones


def _opened(subject) -> dict:
    return private_open(subject_id=subject.id, sealed=m.CareSubjectPrivate.objects.get(subject=subject).sealed)


def _dump(database_url: str, *tables: str) -> str:
    """The data of ``tables`` (every table when none) as pg_dump writes it."""
    args = ["pg_dump", "--data-only", "--no-owner", *(f"--table={t}" for t in tables), database_url]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.fixture
def other_key(monkeypatch):
    """The process reads another (valid) personal-data key until the test ends."""
    monkeypatch.setenv(personal.KEY_VARIABLE, base64.b64encode(secrets.token_bytes(32)).decode())


def test_the_raw_table_holds_no_name_phone_or_flat_in_clear(demo_db, database_url):
    columns = {f.column for f in m.CareSubjectPrivate._meta.concrete_fields}
    assert columns == {"subject_id", "gender", "sealed"}
    dump = _dump(database_url, "care_subject_private")
    assert dump.count("\\x") >= 1024  # the blobs are there, as bytea
    people = m.CareSubject.objects.filter(private__isnull=False).order_by("id")[:50]
    for subject in people:
        fields = _opened(subject)
        raw = bytes(m.CareSubjectPrivate.objects.get(subject=subject).sealed)
        clear = [fields["full_name"], fields["phone"], f'"room":"{fields["room"]}"',
                 f"{fields['unit']}单元{fields['floor']}层{fields['room']}室", json.dumps(fields["contacts"][0]["phone"])]
        clear += [c["name"] for c in fields["contacts"]] + [fields["health_notes"]]
        for value in filter(None, clear):
            assert value not in dump, (subject.code, value)
            assert value.encode() not in raw, (subject.code, value)


def test_sealed_fields_open_to_what_was_written(rollback):
    subject = m.CareSubject.objects.first()
    fields = {"full_name": "测试人", "id_number": "410104195001011234", "birth_date": "1950-01-01",
              "phone": "13800138000", "unit": 2, "floor": 5, "room": "502",
              "contacts": [{"name": "测试亲属", "relation": "子女", "phone": "13900139000"}], "health_notes": "高血压"}
    from gis.care.services import care_private_set

    care_private_set(subject_id=subject.id, gender="F", fields=fields)
    assert _opened(subject) == {name: fields[name] for name in SEALED_FIELDS}


def test_another_key_fails_with_a_clear_error_not_garbage(demo_db, other_key):
    subject = m.CareSubject.objects.first()
    blob = m.CareSubjectPrivate.objects.get(subject=subject).sealed
    with pytest.raises(personal.UnreadablePersonalData) as raised:
        private_open(subject_id=subject.id, sealed=blob)
    message = str(raised.value)
    assert "another key" in message and "ONEMAP_PII_KEY" in message
    assert personal.key().hex() not in message and base64.b64encode(personal.key()).decode() not in message


def test_a_malformed_key_is_refused_by_name_without_its_value(monkeypatch):
    monkeypatch.setenv(personal.KEY_VARIABLE, "not-a-key-c2VjcmV0")
    with pytest.raises(personal.PersonalKeyError) as raised:
        personal.key()
    assert "ONEMAP_PII_KEY must hold 32 bytes" in str(raised.value) and "c2VjcmV0" not in str(raised.value)


def test_a_blob_moved_to_another_persons_row_does_not_open(rollback):
    first, second = m.CareSubject.objects.filter(private__isnull=False).order_by("id")[:2]
    blob = m.CareSubjectPrivate.objects.get(subject=first).sealed
    m.CareSubjectPrivate.objects.filter(subject=second).update(sealed=blob)
    with pytest.raises(personal.UnreadablePersonalData, match="belongs to another record"):
        private_open(subject_id=second.id, sealed=m.CareSubjectPrivate.objects.get(subject=second).sealed)
    assert private_open(subject_id=first.id, sealed=blob)["full_name"]  # where it belongs, it opens


def test_residents_phones_share_the_key_and_stay_bound_to_their_purpose(demo_db, other_key):
    sealed = phones.encrypt("13800138000")
    assert phones.decrypt(sealed) == "13800138000"
    with pytest.raises(personal.UnreadablePersonalData):  # a phone's blob is no person's record
        private_open(subject_id=1, sealed=sealed)
    with pytest.raises(ValueError, match="unknown personal fields"):
        private_seal(subject_id=1, fields={"password": "x"})


def _log_rows(username: str, after: int):
    return list(m.AccessLogEntry.objects.filter(username=username, id__gt=after).order_by("id"))


def _last_log_id() -> int:
    last = m.AccessLogEntry.objects.order_by("-id").first()
    return last.id if last else 0


def test_every_read_through_the_api_is_opened_and_logged(live_server, worker, own_grid):
    url = f"{live_server}/ogc/collections/care_subjects/items"
    subject = m.CareSubject.objects.filter(grid=own_grid, private__isnull=False).order_by("id").first()
    expected = _opened(subject)
    reads = [
        (url, {"limit": "3", "sortby": "code"}, "/ogc/collections/care_subjects/items"),
        (url, {"limit": "2", "f": "html"}, "/ogc/collections/care_subjects/items"),
        (f"{url}/{subject.id}", {}, f"/ogc/collections/care_subjects/items/{subject.id}"),
        (f"{url}/{subject.id}", {"f": "html"}, f"/ogc/collections/care_subjects/items/{subject.id}"),
        (url, {"limit": "2", "properties": "code,full_name"}, "/ogc/collections/care_subjects/items"),
    ]
    for address, params, route in reads:
        start = _last_log_id()
        response = requests.get(address, params=params, auth=worker.auth, timeout=60)
        assert response.status_code == 200, (address, params, response.text[:300])
        logged = {r.record_id for r in _log_rows(worker.username, start) if r.record_id is not None}
        assert logged, (address, params)
        assert {r.route for r in _log_rows(worker.username, start)} == {route}
        if params.get("f") == "html":
            assert str(subject.id) in logged or "items/" not in route
            continue
        body = response.json()
        features = body.get("features", [body])
        assert logged == {str(f["id"]) for f in features}
        for feature in features:
            assert "_sealed" not in feature["properties"]
            assert feature["properties"]["full_name"]
        if "items/" in route:
            properties = body["properties"]
            assert properties["full_name"] == expected["full_name"] and properties["room"] == expected["room"]
            assert properties["phone"] == expected["phone"]
    # the personal fields are returned, never compared in SQL: a filter or sort on them is refused, and logs nothing
    for params in ({"filter": "full_name LIKE '%'"}, {"sortby": "phone"}, {"filter": "room = '502'"}):
        start = _last_log_id()
        response = requests.get(url, params=params, auth=worker.auth, timeout=60)
        assert response.status_code == 400, (params, response.text[:300])
        assert not _log_rows(worker.username, start)


def test_no_key_in_any_log_line_or_the_database_and_a_moved_blob_is_a_clear_500(
        server_process, accounts, database_url):
    key_text = base64.b64encode(personal.key()).decode()
    server = server_process("pii-key-log", env={personal.KEY_VARIABLE: key_text})
    admin = accounts["administrator"]
    url = f"{server.base_url}/ogc/collections/care_subjects/items"
    first, second = m.CareSubject.objects.filter(private__isnull=False).order_by("id")[:2]
    for params in ({"limit": "5"}, {"limit": "5", "f": "html"}):
        assert requests.get(url, params=params, auth=admin.auth, timeout=60).status_code == 200
    assert requests.get(f"{url}/{first.id}", auth=admin.auth, timeout=60).json()["properties"]["full_name"]
    # a blob copied onto another person's row (committed, so the server sees it), then put back
    original = bytes(m.CareSubjectPrivate.objects.get(subject=second).sealed)
    moved = bytes(m.CareSubjectPrivate.objects.get(subject=first).sealed)
    try:
        m.CareSubjectPrivate.objects.filter(subject=second).update(sealed=moved)
        start = _last_log_id()
        response = requests.get(f"{url}/{second.id}", auth=admin.auth, timeout=60)
        assert response.status_code == 500
        assert "could not be decrypted" in response.json()["description"]
        assert _opened(first)["full_name"] not in response.text
        # the attempt was logged all the same: the row was read
        assert [r.record_id for r in _log_rows(admin.username, start)] == [str(second.id)]
    finally:
        m.CareSubjectPrivate.objects.filter(subject=second).update(sealed=original)
    deadline = time.monotonic() + 10
    while "care_subjects/items/" not in server.log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    text = server.log_path.read_text(errors="replace")
    assert "care_subjects/items" in text and "does not open" in text  # the server logged why
    key = personal.key()
    for form in (key_text, key_text[:16], key.hex(), key.hex()[:16], requests.utils.quote(key_text, safe="")):
        assert form not in text
    dump = _dump(database_url)
    assert key_text not in dump and key.hex() not in dump and key_text[:16] not in dump
