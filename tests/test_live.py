"""The live feed: triggers on incidents, NOTIFY on commit, Server-Sent Events at /screen/events."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import uuid

import psycopg
import pytest
import requests


TEST_DATABASE_URL = os.environ["ONEMAP_DATABASE_URL"]  # the test database (tests/conftest.py)
PLACE = (113.6605, 34.7580)  # inside the demo community


def _code() -> str:
    return f"INC-LIVE-{uuid.uuid4().hex[:10]}"


def _create(**kw):
    from gis.incidents.services import incident_create

    fields = dict(lon=PLACE[0], lat=PLACE[1], category="fire_smoke", source="camera", code=_code(), floor=7)
    fields.update(kw)
    return incident_create(**fields)


def _events_after(event_id: int) -> list[tuple]:
    with psycopg.connect(TEST_DATABASE_URL) as conn:
        return conn.execute(
            "SELECT id, kind, op, incident_id FROM live_events WHERE id > %s ORDER BY id", [event_id]
        ).fetchall()


def _last_event_id() -> int:
    with psycopg.connect(TEST_DATABASE_URL) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM live_events").fetchone()[0]


class Stream:
    """A Server-Sent-Events client over requests, parsing messages as they come."""

    def __init__(self, base: str, auth, *, last_event_id: int | None = None, query: str = ""):
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.response = requests.get(base + "/screen/events" + query, auth=auth, headers=headers,
                                     stream=True, timeout=(5, 30))
        self.lines = self.response.iter_lines(decode_unicode=True)
        self.ended = False

    def next(self) -> dict | None:
        """The next message as {event, id, data}; None when the server ended the stream."""
        message: dict = {}
        for line in self.lines:
            if line == "":
                if "event" in message or "data" in message:
                    message.setdefault("event", "message")
                    if "data" in message:
                        message["data"] = json.loads(message["data"])
                    return message
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                message["id"] = int(value)
            elif name in ("event", "data", "retry"):
                message[name] = value
        self.ended = True
        return None

    def until(self, predicate, *, limit: int = 50) -> dict:
        for _ in range(limit):
            message = self.next()
            assert message is not None, "the stream ended before the expected message"
            if predicate(message):
                return message
        raise AssertionError("the expected message did not come")

    def close(self):
        self.response.close()


def _is_incident(incident_id: int, op: str | None = None):
    return lambda m: m["event"] == "incident" and m["data"]["id"] == incident_id and (op is None or m["data"]["op"] == op)


# -- the triggers ------------------------------------------------------------------------


def test_each_incident_write_is_one_event_and_status_changes_are_history(demo_db, accounts):
    from api.auth import identity_for_request
    from gis.incidents.selectors import incident_history
    from gis.incidents.services import incident_delete, incident_update
    from layers.access import scoped_django

    before = _last_event_id()
    incident = _create()
    commander = _identity(accounts["commander"], identity_for_request)
    with scoped_django(commander):
        incident_update(incident_id=incident.pk, status="dispatched")
    incident_update(incident_id=incident.pk, severity=4)  # no status change: an event, no history
    history = incident_history(incident.pk)
    incident_delete(incident_id=incident.pk)

    events = [(kind, op, iid) for _id, kind, op, iid in _events_after(before)]
    assert events == [
        ("incident", "insert", incident.pk), ("incident", "update", incident.pk),
        ("incident", "update", incident.pk), ("incident", "delete", incident.pk),
    ]
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in history] == [
        (None, "new", ""), ("new", "dispatched", accounts["commander"].username)
    ]
    assert incident_history(incident.pk) == []  # deleted with its incident


def _identity(account, identity_for_request):
    import base64

    class _Req:
        META = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{account.username}:{account.token}".encode()).decode()}

    return identity_for_request(_Req())


def test_a_bulk_write_is_one_reset_and_a_rolled_back_one_nothing(demo_db):
    before = _last_event_id()
    with psycopg.connect(TEST_DATABASE_URL) as conn:
        conn.execute(
            "INSERT INTO incidents (code, synthetic, category, source, severity, status, title, description, notes,"
            " reported_at, evidence, geom, created_at, updated_at)"
            " SELECT 'INC-BULK-' || n, true, 'sanitation', 'staff', 1, 'new', '', '', '', now(), '{}',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4326), now(), now() FROM generate_series(1, 600) n",
            list(PLACE),
        )
        conn.commit()
        assert [(k, op) for _i, k, op, _n in _events_after(before)] == [("reset", "insert")]
        middle = _last_event_id()
        conn.execute("UPDATE incidents SET status = 'closed' WHERE code LIKE 'INC-BULK-%%' AND code <> 'INC-BULK-1'")
        conn.execute("DELETE FROM incidents WHERE code = 'INC-BULK-1'")
        conn.rollback()
        assert _events_after(middle) == []
        conn.execute("DELETE FROM incidents WHERE code LIKE 'INC-BULK-%%'")
        conn.commit()
        assert [(k, op) for _i, k, op, _n in _events_after(middle)] == [("reset", "delete")]


def test_event_ids_become_visible_in_commit_order(demo_db):
    """A writer that took an event id holds the lock to commit: a later id cannot commit first."""
    before = _last_event_id()
    first = psycopg.connect(TEST_DATABASE_URL)
    second = psycopg.connect(TEST_DATABASE_URL)
    insert = ("INSERT INTO incidents (code, synthetic, category, source, severity, status, title, description, notes,"
              " reported_at, evidence, geom, created_at, updated_at) VALUES (%s, true, 'sanitation', 'staff', 1, 'new',"
              " '', '', '', now(), '{}', ST_SetSRID(ST_MakePoint(113.66, 34.758), 4326), now(), now())")
    done = threading.Event()
    try:
        first.execute(insert, [_code()])

        def later():
            second.execute(insert, [_code()])
            second.commit()
            done.set()

        thread = threading.Thread(target=later)
        thread.start()
        assert not done.wait(1.0), "the second writer committed while the first held its event id"
        assert _events_after(before) == []
        first.commit()
        thread.join(10)
        assert done.is_set()
        ids = [row[0] for row in _events_after(before)]
        assert len(ids) == 2 and ids == sorted(ids)
    finally:
        first.close()
        second.close()
        with psycopg.connect(TEST_DATABASE_URL) as conn:
            conn.execute("DELETE FROM incidents WHERE id IN (SELECT incident_id FROM live_events WHERE id > %s)", [before])


# -- the stream --------------------------------------------------------------------------


def test_the_feed_needs_a_screen_role(live_server, accounts):
    anonymous = requests.get(live_server + "/screen/events", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    for key in ("analyst", "worker", "department"):
        refused = requests.get(live_server + "/screen/events", auth=accounts[key].auth, timeout=10)
        assert refused.status_code == 403, key
        assert "commander" in refused.json()["error"]
    wrong = requests.get(live_server + "/screen/events", auth=(accounts["commander"].username, "om_wrong"), timeout=10)
    assert wrong.status_code == 401


@pytest.mark.parametrize("cursor", ["-1", "abc", "1.5", "9" * 30])
def test_a_malformed_cursor_is_refused_with_a_reason(live_server, accounts, cursor):
    response = requests.get(live_server + "/screen/events", auth=accounts["commander"].auth,
                            headers={"Last-Event-ID": cursor}, timeout=10)
    assert response.status_code == 400
    assert "last_event_id" in response.json()["error"]


def test_only_get_reads_the_feed(live_server, accounts):
    response = requests.post(live_server + "/screen/events", auth=accounts["commander"].auth, timeout=10)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_a_committed_incident_reaches_an_open_stream_with_its_feature(live_server, accounts, demo_db):
    stream = Stream(live_server, accounts["commander"].auth)
    try:
        assert stream.response.headers["Content-Type"].startswith("text/event-stream")
        hello = stream.next()
        assert hello["event"] == "hello" and hello["data"]["last_event_id"] == _last_event_id()
        assert hello["id"] == hello["data"]["last_event_id"]  # a browser reconnecting before any event sends it
        incident = _create(category="falling_object", floor=12)
        message = stream.until(_is_incident(incident.pk, "insert"))
        feature = message["data"]["feature"]
        assert feature["geometry"]["coordinates"] == pytest.approx(list(PLACE))
        props = feature["properties"]
        assert (props["category"], props["floor"], props["status"]) == ("falling_object", 12, "new")
        assert props["grid_code"] == incident.grid.code and props["grid_name"] == incident.grid.name
        assert "description" not in props and "evidence" not in props

        from gis.incidents.services import incident_delete, incident_update

        incident_update(incident_id=incident.pk, status="resolved")
        updated = stream.until(_is_incident(incident.pk, "update"))
        assert updated["data"]["feature"]["properties"]["status"] == "resolved"
        incident_delete(incident_id=incident.pk)
        deleted = stream.until(_is_incident(incident.pk, "delete"))
        assert deleted["data"]["feature"] is None
        assert deleted["id"] > updated["id"] > message["id"]
    finally:
        stream.close()


def test_a_reconnecting_client_is_replayed_what_it_missed(live_server, accounts, demo_db):
    cursor = _last_event_id()
    missed = [_create(category="illegal_parking") for _ in range(3)]
    stream = Stream(live_server, accounts["commander"].auth, last_event_id=cursor)
    try:
        assert stream.next()["event"] == "hello"
        replayed = [stream.next() for _ in missed]
        assert [m["data"]["id"] for m in replayed] == [i.pk for i in missed]
        assert [m["id"] for m in replayed] == sorted(m["id"] for m in replayed)
        # the query parameter is the fallback cursor
        again = Stream(live_server, accounts["commander"].auth, query=f"?last_event_id={replayed[0]['id']}")
        try:
            again.next()
            assert [again.next()["data"]["id"] for _ in missed[1:]] == [i.pk for i in missed[1:]]
        finally:
            again.close()
    finally:
        stream.close()


def test_a_cursor_the_server_cannot_replay_gets_a_reset(live_server, accounts, demo_db):
    future = Stream(live_server, accounts["commander"].auth, last_event_id=_last_event_id() + 1000)
    try:
        future.next()
        message = future.next()
        assert message["event"] == "reset" and message["id"] == _last_event_id()
    finally:
        future.close()

    cursor = _last_event_id()
    pruned_one, kept_one = _create(), _create()
    with psycopg.connect(TEST_DATABASE_URL) as conn:  # pruned, as after a week away: the oldest go first
        conn.execute("DELETE FROM live_events WHERE id <= %s", [cursor + 1])
    pruned = Stream(live_server, accounts["commander"].auth, last_event_id=cursor)
    try:
        pruned.next()
        assert pruned.next()["event"] == "reset"
    finally:
        pruned.close()
    # a gap left by a rolled-back writer is no reason to reload
    with psycopg.connect(TEST_DATABASE_URL) as conn:
        conn.execute("UPDATE incidents SET severity = 3 WHERE id = %s", [kept_one.pk])
        conn.rollback()
        conn.execute("UPDATE incidents SET severity = 4 WHERE id = %s", [kept_one.pk])
        conn.commit()
    gap = Stream(live_server, accounts["commander"].auth, last_event_id=cursor + 2)
    try:
        gap.next()
        message = gap.next()
        assert message["event"] == "incident" and message["data"]["id"] == kept_one.pk
        assert message["data"]["feature"]["properties"]["severity"] == 4
    finally:
        gap.close()
    from gis.incidents.services import incident_delete

    for incident in (pruned_one, kept_one):
        incident_delete(incident_id=incident.pk)


def test_a_subscriber_that_falls_behind_is_cut_off_not_buffered_without_bound():
    from api.live import QUEUE_SIZE, Message, Subscriber

    async def run():
        subscriber = Subscriber()
        for n in range(QUEUE_SIZE * 3):
            subscriber.offer(Message("incident", "{}", n))
        return subscriber.queue.qsize(), subscriber.cut_off.is_set()

    assert asyncio.run(run()) == (QUEUE_SIZE, True)


def test_the_feed_survives_losing_its_database_connection(live_server, accounts, demo_db):
    stream = Stream(live_server, accounts["commander"].auth)
    try:
        stream.next()
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name LIKE 'onemap-live%%' AND datname = current_database()"
            ).fetchone()[0]
        assert killed >= 1
        incident = _create()
        stream.until(_is_incident(incident.pk, "insert"))
    finally:
        stream.close()


def test_a_server_restart_ends_streams_promptly_and_the_client_catches_up(server_process, accounts):
    server = server_process("live-restart", workers=1)
    stream = Stream(server.base_url, accounts["commander"].auth)
    hello = stream.next()
    seconds = server.stop()
    assert seconds < 10, f"the server took {seconds:.1f} s to stop with a stream open"
    try:  # the stream ended, cleanly or cut (a worker is ended after a grace period); a browser reconnects
        assert stream.next() is None
    except requests.exceptions.ChunkedEncodingError:
        pass
    stream.close()
    incident = _create(category="falling_object")  # while the server is down
    server.start()
    again = Stream(server.base_url, accounts["commander"].auth, last_event_id=hello["id"])  # what a browser sends
    try:
        again.until(_is_incident(incident.pk, "insert"))
    finally:
        again.close()
