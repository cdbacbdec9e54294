"""The OGC API's hottest routes answered straight from WSGI, before Django.

GET of items and of one item as GeoJSON is what QGIS, GDAL and the big screen ask for
most. The answer is made by the same functions the Django views call
(:func:`api.ogc.items_json`, :func:`api.ogc.item_json`), with the same
authentication, errors and security headers; only Django's request machinery is
skipped, which costs more than the database work of a small request. Everything
else — HTML, writes, ``OPTIONS``, metadata — goes on to Django.

Under the ASGI server (:mod:`host.asgi`) the same answer is first tried on the event
loop itself (:func:`answer_on_loop`), with the read made by :mod:`layers.loop_reads`:
no thread, no hop. A request that would need a thread there (a token this process does
not remember, no connection free at once, a connection the server dropped) is answered
here instead.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from urllib.parse import parse_qsl

_FEATURES = re.compile(r"^/ogc/collections/(?P<collection_id>[^/]+)/items(?:/(?P<item_id>[^/]+))?/?$")


class FastFeatures:
    """WSGI middleware: answers ``GET …/items[/{id}]`` as GeoJSON itself, passes the rest to ``app``."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            match = _FEATURES.match(environ.get("PATH_INFO", ""))
            if match:
                request = _Request(environ)
                if not _html(request):
                    return self._serve(request, match, start_response)
        return self.app(environ, start_response)

    def _serve(self, request, match, start_response):
        from django.db import close_old_connections, connection

        from api import ogc
        from layers.access import run_reads

        try:
            identity = ogc._identity(request)
            layer = ogc._layer_for(identity, match["collection_id"])
            body, headers = run_reads(_steps(request, identity, layer, match))
            status = HTTPStatus.OK
        except Exception as exc:
            status, headers, body = _refused(exc)
        finally:
            if connection.connection is not None:  # the ORM was used (a token not yet cached)
                close_old_connections()
        return [_respond(start_response, status, headers, body, request)]


def route(path: str):
    """The fast path's match of a path (``collection_id``, ``item_id``), or None when it is not one of its routes."""
    return _FEATURES.match(path)


async def answer_on_loop(environ, match) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The answer to ``GET …/items[/{id}]`` made on the event loop (status, headers, body), or None when the
    request must go to a thread (see the module's docstring); ``match`` is :func:`route`'s."""
    from api.auth import known_identity
    from api.ogc import _layer_for
    from layers.loop_reads import Fallback, run_reads_on_loop

    request = _Request(environ)
    try:
        if _html(request):
            return None
        identity = known_identity(request)
        if identity is None:
            return None
        layer = _layer_for(identity, match["collection_id"])
        body, headers = await run_reads_on_loop(_steps(request, identity, layer, match))
        status = HTTPStatus.OK
    except Fallback:
        return None
    except Exception as exc:
        status, headers, body = _refused(exc)
    return status.value, _headers(headers, body, request), body


def _steps(request, identity, layer, match):
    from api.ogc import item_json_steps, items_steps

    if match["item_id"] is None:
        return items_steps(request, identity, layer)
    return item_json_steps(request, identity, layer, match["item_id"])


def _refused(exc: Exception) -> tuple[HTTPStatus, dict, bytes]:
    """The answer to a request that failed: its OGC error, or the exception itself when it is not the client's."""
    from layers.errors import OGCError, from_database

    error = exc if isinstance(exc, OGCError) else from_database(exc)
    if error is None:
        raise exc
    return HTTPStatus(error.status), {"Content-Type": "application/json", **error.headers}, error.body()


def _headers(headers: dict, body: bytes, request) -> list[tuple[str, str]]:
    from api.middleware import security_headers

    headers["Content-Length"] = str(len(body))
    return security_headers(headers, authorised="HTTP_AUTHORIZATION" in request.META)


def _respond(start_response, status: HTTPStatus, headers: dict, body: bytes, request) -> bytes:
    start_response(f"{status.value} {status.phrase}", _headers(headers, body, request))
    return body


class _Request:
    """The little of Django's HttpRequest that the feature functions read."""

    def __init__(self, environ):
        self.META = environ
        self.path = environ.get("PATH_INFO", "")
        self.GET = _Params(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        self.headers = {"Accept": environ.get("HTTP_ACCEPT", "")}


class _Params(dict):
    """Query parameters with QueryDict's ``get``/``keys``/``dict`` (the last value of a repeated name wins)."""

    def dict(self) -> dict:
        return dict(self)


def _html(request) -> bool:
    from api.ogc import _wants_html
    from layers.errors import OGCError

    try:
        return _wants_html(request)
    except OGCError:
        return True  # Django answers the error
