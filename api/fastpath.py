"""The OGC API's hottest routes answered straight from WSGI, before Django.

GET of items and of one item as GeoJSON is what QGIS, GDAL and the big screen ask for
most. The answer is made by the same functions the Django views call
(:func:`api.ogc.items_json`, :func:`api.ogc.item_json`), with the same
authentication, errors and security headers; only Django's request machinery is
skipped, which costs more than the database work of a small request. Everything
else — HTML, writes, ``OPTIONS``, metadata — goes on to Django.
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
        from api.middleware import security_headers
        from layers.errors import OGCError, from_database

        try:
            identity = ogc._identity(request)
            layer = ogc._layer_for(identity, match["collection_id"])
            if match["item_id"] is None:
                body, headers = ogc.items_json(request, identity, layer)
            else:
                body, headers = ogc.item_json(request, identity, layer, match["item_id"])
            status = HTTPStatus.OK
        except Exception as exc:
            error = exc if isinstance(exc, OGCError) else from_database(exc)
            if error is None:
                raise
            body, status = error.body(), HTTPStatus(error.status)
            headers = {"Content-Type": "application/json", **error.headers}
        finally:
            if connection.connection is not None:  # the ORM was used (a token not yet cached)
                close_old_connections()
        headers["Content-Length"] = str(len(body))
        start_response(f"{status.value} {status.phrase}",
                       security_headers(headers, authorised="HTTP_AUTHORIZATION" in request.META))
        return [body]


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
