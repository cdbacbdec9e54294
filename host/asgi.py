"""ASGI entry point: ``host.asgi:application`` (``onemap serve`` runs it under granian).

The live feeds (``GET /screen/events``, and ``/m/events`` for phones) are served here, on the event loop, so a
thousand open big screens cost a thousand small objects rather than a thousand
threads. ``GET …/items[/{id}]`` as GeoJSON is answered on the loop too when it can be
(:func:`api.fastpath.answer_on_loop`: its one read made without blocking). Every other
request goes to the WSGI application of :mod:`host.wsgi` (the OGC fast path, then
Django) on a pool of threads, exactly as under a WSGI server.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from api import fastpath
from api.residents import limits as _residents
from host.access_log import AccessLog
from host.access_log import enabled as access_log_enabled

log = logging.getLogger(__name__)

EVENTS_PATH = "/screen/events"
PHONE_EVENTS_PATH = "/m/events"  # the same feed, cut down to one grid worker (api.mobile.feed)
# the largest body any request may carry (routes keep smaller limits of their own, e.g. a feature's)
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# the one route that may carry more: a resident's report with three full-size photos
BODY_LIMITS = {_residents.SUBMIT_PATH: _residents.SUBMIT_BODY_BYTES}
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # a reverse proxy must not hold events back
    (b"x-content-type-options", b"nosniff"),
]


class OnemapASGI:
    """The live feed on the loop; everything else through the WSGI app on ``threads`` threads."""

    def __init__(self, wsgi_app, *, threads: int, access_log: AccessLog | None = None):
        from api.live import Feed

        self.wsgi_app = wsgi_app
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="onemap-wsgi")
        self.feed = Feed()
        self.access_log = access_log

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.access_log is not None:
            await self._logged(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _logged(self, scope, receive, send):
        """One request, then its line in the access log (a status of 0: no answer was sent)."""
        started, status = time.perf_counter(), 0

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._http(scope, receive, sending)
        finally:
            self.access_log.record(scope, status, started)

    async def _http(self, scope, receive, send):
        if scope["path"] == EVENTS_PATH:
            await self._events(scope, receive, send, watch=_screen_watch)
        elif scope["path"] == PHONE_EVENTS_PATH:
            await self._events(scope, receive, send, watch=_phone_watch)
        elif not await self._on_loop(scope, send):
            await self._wsgi(scope, receive, send)

    # -- features on the loop ----------------------------------------------------------

    async def _on_loop(self, scope, send) -> bool:
        """Answer a feature read on the loop; False when it is not one, or it needs a thread after all."""
        if scope["method"] != "GET" or _has_body(scope):
            return False
        match = fastpath.route(scope["path"])
        if match is None:
            return False
        answer = await fastpath.answer_on_loop(_environ(scope, b""), match)
        if answer is None:
            return False
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": [_header(*h) for h in headers]})
        await send({"type": "http.response.body", "body": body})
        return True

    # -- WSGI on threads ---------------------------------------------------------------

    async def _wsgi(self, scope, receive, send):
        body = b""
        if _has_body(scope):
            limit = BODY_LIMITS.get(scope["path"], MAX_REQUEST_BYTES)
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                return await _too_large(send, declared, limit)
            body = await _read_body(receive, limit=limit)
            if body is None:
                return await _too_large(send, None, limit)
        environ = _environ(scope, body)
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(self.executor, _run_wsgi, self.wsgi_app, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    # -- the live feed -----------------------------------------------------------------

    async def _events(self, scope, receive, send, *, watch):
        """A live stream; ``watch(scope)`` (on a thread) is (refusal, None) or (None, the caller's filter or None)."""
        from api.live import (
            RETRY_MS,
            FeedUnavailable,
            hello,
            parse_last_event_id,
            reset,
        )

        if scope["method"] not in ("GET", "HEAD"):
            return await _plain(send, 405, "The live feed is read with GET.", [(b"allow", b"GET, HEAD")])
        refusal, keep = await asyncio.get_running_loop().run_in_executor(self.executor, watch, scope)
        if refusal is not None:
            return await _plain(send, *refusal)
        headers = dict(scope["headers"])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            cursor = parse_last_event_id(
                headers.get(b"last-event-id", b"").decode("latin-1") or None, (query.get("last_event_id") or [None])[-1]
            )
        except ValueError as exc:
            return await _plain(send, 400, str(exc))
        try:
            subscriber = await self.feed.subscribe()
        except FeedUnavailable as exc:
            return await _plain(send, 503, str(exc), [(b"retry-after", b"2")])
        disconnected = asyncio.get_running_loop().create_task(_wait_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
            sent = self.feed.last_id if cursor is None else cursor
            first = [f"retry: {RETRY_MS}\n\n".encode(), hello(self.feed, cursor=sent).encode()]
            if cursor is not None:
                replayed = await self.feed.replay(after=cursor)
                if replayed is None:
                    message = reset(self.feed, "too much was missed to replay; reload")
                    first.append(message.encode())
                    sent = message.id
                else:
                    sent = max([sent] + [m.id for m in replayed])
                    first.extend(m.encode() for m in _kept(replayed, keep))
            if scope["method"] == "HEAD":
                return await send({"type": "http.response.body", "body": b""})
            await send({"type": "http.response.body", "body": b"".join(first), "more_body": True})
            await self._stream(subscriber, send, disconnected, sent, keep)
        except OSError:  # the client went away while we wrote
            pass
        finally:
            self.feed.unsubscribe(subscriber)
            disconnected.cancel()

    async def _stream(self, subscriber, send, disconnected, sent: int, keep) -> None:
        from api.live import HEARTBEAT_S

        stopping = asyncio.ensure_future(self.feed.stopping.wait())
        cut_off = asyncio.ensure_future(subscriber.cut_off.wait())
        try:
            while True:
                getter = asyncio.ensure_future(subscriber.queue.get())
                done, _ = await asyncio.wait(
                    {getter, disconnected, stopping, cut_off}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                if disconnected in done:
                    return
                if stopping in done or cut_off in done:
                    # the browser reconnects by itself and replays from its last id
                    return await send({"type": "http.response.body", "body": b"", "more_body": False})
                if getter in done:
                    batch = [getter.result()]
                    while not subscriber.queue.empty() and len(batch) < 100:
                        batch.append(subscriber.queue.get_nowait())
                    fresh = [m for m in batch if m.id is None or m.id > sent]
                    if fresh:
                        sent = max([sent] + [m.id for m in fresh if m.id is not None])
                        fresh = _kept(fresh, keep)
                    if fresh:
                        await send({"type": "http.response.body", "more_body": True,
                                    "body": b"".join(m.encode() for m in fresh)})
                else:
                    await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
        finally:
            stopping.cancel()
            cut_off.cancel()

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from layers.db import close_loop_connections

                await self.feed.stop()
                close_loop_connections()
                if self.access_log is not None:
                    self.access_log.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _kept(messages, keep) -> list:
    """The messages a stream's caller may hear (all of them without a filter), as the filter cuts them down."""
    if keep is None:
        return list(messages)
    return [m for m in (keep(message) for message in messages) if m is not None]


def _screen_watch(scope):
    """The big screen's stream: every message, for the screen's roles."""
    return _screen_refusal(scope), None


def _phone_watch(scope):
    """The phone's stream: its grid's incidents and its worker's notifications (``api.mobile.feed``)."""
    from django.db import close_old_connections

    from api.mobile.feed import phone_watch

    try:
        refusal, keep = phone_watch(_environ(scope, b""))
    except Exception as exc:
        from layers.errors import from_database

        error = from_database(exc)
        if error is None:
            raise
        refusal, keep = (error.status, error.description, error.headers), None
    finally:
        close_old_connections()
    if refusal is not None:
        status, message, headers = refusal
        return (status, message, [(k.lower().encode(), v.encode()) for k, v in headers.items()]), None
    return None, keep


def _screen_refusal(scope) -> tuple[int, str, list] | None:
    """None when the caller may watch the screen; else (status, message, headers)."""
    from django.db import close_old_connections

    from api.auth import AuthError, require_role
    from core.roles import SCREEN_ROLES

    request = _MetaRequest(_environ(scope, b""))
    try:
        require_role(request, SCREEN_ROLES, what="the big screen's live feed")
    except AuthError as exc:
        return exc.status, str(exc), [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
    except Exception as exc:
        from layers.errors import from_database

        error = from_database(exc)
        if error is None:
            raise
        return error.status, error.description, [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    finally:
        close_old_connections()
    return None


class _MetaRequest:
    def __init__(self, environ):
        self.META = environ


async def _plain(send, status: int, message: str, headers: list | None = None) -> None:
    import json

    body = json.dumps({"status": status, "error": message}, ensure_ascii=False).encode()  # as the screen's errors
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _wait_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _has_body(scope) -> bool:
    """Whether the request announces a body (a GET almost never does; not reading saves a round into the server)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value != b"0" or name == b"transfer-encoding":
            return True
    return False


async def _read_body(receive, *, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it grows past ``limit`` bytes (the rest is not read)."""
    parts, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(parts)


def _content_length(scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send, size: int | None, limit: int = MAX_REQUEST_BYTES) -> None:
    said = f"{size / 1024 / 1024:.1f} MiB" if size is not None else "larger than that"
    await _plain(send, 413, f"The request body is {said}; this server accepts at most "
                            f"{limit // 1024 // 1024} MiB per request here.", [(b"connection", b"close")])


def _environ(scope, body: bytes) -> dict:
    """The WSGI environ of an ASGI HTTP scope (PEP 3333: text is latin-1 of the bytes)."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
        "PATH_INFO": scope["path"].encode().decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0],
        "REMOTE_PORT": str(client[1]),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE" or name == "CONTENT_LENGTH":
            key = name
        else:
            key = "HTTP_" + name
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


@functools.lru_cache(maxsize=1024)
def _header(name: str, value: str) -> tuple[bytes, bytes]:
    """A response header as ASGI sends it (most are the same on every answer: made once)."""
    return name.lower().encode("latin-1"), value.encode("latin-1")


def _run_wsgi(app, environ) -> tuple[int, list, list[bytes]]:
    """Call the WSGI app on this thread; its status, headers and whole body."""
    response = {}

    def start_response(status, headers, exc_info=None):
        response["status"] = int(status.split(" ", 1)[0])
        response["headers"] = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return lambda data: chunks.append(data)

    chunks: list[bytes] = []
    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return response["status"], response["headers"], chunks


def _build():
    from core.children import die_with_parent
    from host.wsgi import application as wsgi_application

    die_with_parent()
    return OnemapASGI(wsgi_application, threads=int(os.environ.get("ONEMAP_HTTP_THREADS", "4")),
                      access_log=AccessLog() if access_log_enabled() else None)


application = _build()
