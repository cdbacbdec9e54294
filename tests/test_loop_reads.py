"""Feature reads answered on the server's event loop (``host.asgi`` → ``api.fastpath.answer_on_loop`` →
``layers.loop_reads``): the same answers as on a request thread, no thread used once the caller is known,
and a failed read handed to a thread or answered as the client's error.

The ASGI application is called in-process, over the test database; every other test of the OGC API
reaches the same code through the real server (``live_server``).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import re

import pytest

from gis import models as m


class _App:
    """host.asgi's application over the WSGI app, counting the requests it hands to its threads."""

    def __init__(self):
        from host.asgi import OnemapASGI
        from host.wsgi import application as wsgi_application

        self.asgi = OnemapASGI(wsgi_application, threads=2)
        self.wsgi = wsgi_application
        self.threaded = 0
        submit = self.asgi.executor.submit

        def counting(*args, **kwargs):
            self.threaded += 1
            return submit(*args, **kwargs)

        self.asgi.executor.submit = counting

    def get(self, path: str, query: str = "", *, auth: tuple[str, str] | None = None) -> tuple[int, dict, bytes]:
        """One GET through the ASGI app (on the loop when it can be)."""
        headers = [(b"accept", b"application/geo+json")]
        if auth is not None:
            headers.append((b"authorization", _basic(auth)))
        scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
                 "query_string": query.encode(), "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000)}
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        asyncio.run(self.asgi(scope, receive, send))
        start = next(message for message in sent if message["type"] == "http.response.start")
        body = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
        return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body

    def get_on_thread(self, path: str, query: str = "", *, auth=None) -> tuple[int, dict, bytes]:
        """The same GET answered by the WSGI app (the thread path) directly."""
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "8000", "wsgi.url_scheme": "http", "HTTP_ACCEPT": "application/geo+json",
                   "REMOTE_ADDR": "127.0.0.1", "wsgi.input": None}
        if auth is not None:
            environ["HTTP_AUTHORIZATION"] = _basic(auth).decode()
        answer = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = int(status.split()[0]), {k.lower(): v for k, v in headers}

        body = b"".join(self.wsgi(environ, start_response))
        return answer["status"], answer["headers"], body


def _warm(app: _App, *auths) -> None:
    """Each caller's token checked against the database (on a thread), and the loop given a connection of its own
    (its first read on the loop finds none, hands the request to a thread and has one fetched)."""
    for auth in auths:
        for _ in range(2):
            assert app.get("/ogc/collections/buildings/items", "limit=1", auth=auth)[0] == 200


def _basic(auth: tuple[str, str]) -> bytes:
    return b"Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode())


def _same(body: bytes) -> bytes:
    return re.sub(rb'"timeStamp":"[^"]+"', b'"timeStamp":""', body)


@pytest.fixture
def app(demo_db, accounts):
    from api.auth import clear_identity_cache
    from layers.db import close_loop_connections

    clear_identity_cache()
    made = _App()
    yield made
    made.asgi.executor.shutdown(wait=True)  # its threads end and give back the connections they kept
    gc.collect()
    close_loop_connections()


def test_feature_reads_on_the_loop_answer_as_the_thread_does_and_use_no_thread(app, accounts, own_grid, other_grid):
    worker, analyst = accounts["worker"], accounts["analyst"]
    own = m.Building.objects.filter(grid=own_grid).order_by("id").first()
    other = m.Building.objects.filter(grid=other_grid).order_by("id").first()
    subject = m.CareSubject.objects.filter(grid=own_grid).order_by("id").first()
    asks = [
        (None, "/ogc/collections/buildings/items", "limit=3"),
        (None, f"/ogc/collections/buildings/items/{own.id}", ""),
        (None, "/ogc/collections/care_subjects/items", "limit=1"),  # 401: a restricted layer
        (analyst.auth, "/ogc/collections/buildings/items", "limit=2&filter=floors>3&filter-lang=cql2-text"),
        (analyst.auth, "/ogc/collections/incidents/items", "limit=5"),
        (worker.auth, "/ogc/collections/buildings/items", "limit=1000"),
        (worker.auth, f"/ogc/collections/buildings/items/{own.id}", ""),
        (worker.auth, f"/ogc/collections/buildings/items/{other.id}", ""),  # another grid's: 404
        (worker.auth, "/ogc/collections/buildings/items/not-a-number", ""),
        (worker.auth, "/ogc/collections/buildings/items", "ooga=booga"),  # an unknown parameter: 400
        (worker.auth, f"/ogc/collections/care_subjects/items/{subject.id}", ""),  # personal: read and logged
    ]
    _warm(app, None, analyst.auth, worker.auth)
    threaded = app.threaded
    logged = m.AccessLogEntry.objects.filter(username=worker.username, record_id=str(subject.id))
    reads = logged.count()
    for auth, path, query in asks:
        on_loop = app.get(path, query, auth=auth)
        on_thread = app.get_on_thread(path, query, auth=auth)
        assert on_loop[0] == on_thread[0], (path, query, on_loop[2][:300])
        assert _same(on_loop[2]) == _same(on_thread[2]), (path, query)
        assert on_loop[1] == on_thread[1], (path, query)
    assert app.threaded == threaded, "a known caller's feature reads were handed to a thread"
    statuses = [app.get(path, query, auth=auth)[0] for auth, path, query in asks]
    assert statuses == [200, 200, 401, 200, 200, 200, 200, 404, 404, 400, 200]
    page = json.loads(app.get("/ogc/collections/buildings/items", "limit=1000", auth=worker.auth)[2])
    assert page["numberMatched"] == m.Building.objects.filter(grid=own_grid).count()
    assert {f["properties"]["grid_code"] for f in page["features"]} == {own_grid.code}
    assert logged.count() == reads + 2 + 1  # the personal record read on the loop, on a thread, and on the loop


def test_a_database_error_on_the_loop_is_the_clients_400_and_the_loop_reads_on(app, accounts):
    analyst = accounts["analyst"]
    _warm(app, analyst.auth)
    threaded = app.threaded
    # an integer overflow in the database (SQLSTATE 22003), as tests/security/test_bad_input.py sends it
    query = "filter=severity * 2147483647 * 2147483647 > 1&filter-lang=cql2-text"
    status, _, body = app.get("/ogc/collections/incidents/items", query, auth=analyst.auth)
    assert (status, app.get_on_thread("/ogc/collections/incidents/items", query, auth=analyst.auth)[0]) == (400, 400)
    assert "the database cannot evaluate this request" in json.loads(body)["description"]
    assert app.get("/ogc/collections/incidents/items", "limit=2", auth=analyst.auth)[0] == 200
    assert app.threaded == threaded  # the error and the read after it stayed on the loop


def test_a_loop_connection_the_server_ended_hands_its_request_to_a_thread_and_is_replaced(app, accounts):
    from django.db import connection

    from layers import db

    analyst = accounts["analyst"]
    _warm(app, analyst.auth)
    held = [conn.info.backend_pid for _, conn in db._loop_idle]
    assert held, "the loop holds no connection after its reads"
    with connection.cursor() as cursor:
        for pid in held:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    threaded = app.threaded
    status, _, body = app.get("/ogc/collections/buildings/items", "limit=1", auth=analyst.auth)
    assert status == 200 and json.loads(body)["numberReturned"] == 1, body
    assert app.threaded == threaded + 1  # answered on a thread
    for _ in range(20):  # meanwhile a thread fetches the loop a fresh connection
        app.get("/ogc/collections/buildings/items", "limit=1", auth=analyst.auth)
    threaded = app.threaded
    assert app.get("/ogc/collections/buildings/items", "limit=1", auth=analyst.auth)[0] == 200
    assert app.threaded == threaded
    assert not set(held) & {conn.info.backend_pid for _, conn in db._loop_idle}


def test_a_token_due_to_be_marked_used_goes_to_a_thread_which_marks_it(app, accounts):
    from api import auth
    from gis.accounts.models import AccessToken

    analyst = accounts["analyst"]
    _warm(app, analyst.auth)
    for entry in auth._CACHE.values():
        entry.touched_at -= auth.TOUCH_INTERVAL + 1
    AccessToken.objects.filter(user__username=analyst.username).update(last_used_at=None)
    threaded = app.threaded
    assert app.get("/ogc/collections/buildings/items", "limit=1", auth=analyst.auth)[0] == 200
    assert app.threaded == threaded + 1
    assert AccessToken.objects.filter(user__username=analyst.username, last_used_at__isnull=False).exists()
    assert app.get("/ogc/collections/buildings/items", "limit=1", auth=analyst.auth)[0] == 200
    assert app.threaded == threaded + 1  # marked: back on the loop
