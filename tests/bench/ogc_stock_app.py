"""The stock baseline of ``tests/bench/ogc.py``: pygeoapi's own PostgreSQL provider behind a tiny WSGI function.

Served by granian the way ``onemap serve`` serves ours (2 workers, 4 threads each)::

    OGC_STOCK_CONFIG=.var/bench/ogc_stock_config.json \\
        granian --interface wsgi --workers 2 --blocking-threads 4 --working-dir tests/bench ogc_stock_app:application

The configuration (written by ``ogc.py``) names ``pygeoapi.provider.sql.PostgreSQLProvider``
(psycopg2, through SQLAlchemy) on the same ``ogc_<layer>`` views our server reads. Only the
routes the benchmark asks for are answered, under the same ``/ogc/`` prefix as ours, so
both servers get byte-for-byte the same request paths. Nothing here is ours: no provider
code, no Django — the baseline is pygeoapi as shipped.
"""

from __future__ import annotations

import json
import os
import re
import sys

CONFIG_VARIABLE = "OGC_STOCK_CONFIG"
_ITEMS = re.compile(r"^/ogc/collections/(?P<collection>[^/]+)/items/?$")
_ITEM = re.compile(r"^/ogc/collections/(?P<collection>[^/]+)/items/(?P<item>[^/]+)/?$")
_COLLECTION = re.compile(r"^/ogc/collections/(?P<collection>[^/]+)/?$")
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}

_api = None


def application(environ, start_response):
    """WSGI entry: route the three read-only paths the benchmark uses to pygeoapi's API functions."""
    from werkzeug.wrappers import Request

    request = Request(environ)
    headers, status, content = _dispatch(request)
    if isinstance(content, str):
        content = content.encode("utf-8")
    start_response(f"{status} {_REASONS.get(status, 'Status')}", [(k, str(v)) for k, v in headers.items()])
    return [content]


def _dispatch(request) -> tuple[dict, int, bytes | str]:
    import pygeoapi.api as core
    import pygeoapi.api.itemtypes as itemtypes
    from pygeoapi.api import APIRequest

    api = _stock_api()
    api_request = APIRequest.from_flask(request, api.locales)  # a werkzeug request is all it reads
    path = request.path
    if match := _ITEMS.match(path):
        return itemtypes.get_collection_items(api, api_request, match["collection"])
    if match := _ITEM.match(path):
        return itemtypes.get_collection_item(api, api_request, match["collection"], match["item"])
    if match := _COLLECTION.match(path):
        return core.describe_collections(api, api_request, match["collection"])
    message = {"code": "NotFound", "description": f"the stock baseline answers only /ogc/collections/... (got {path})"}
    return {"Content-Type": "application/json"}, 404, json.dumps(message)


def _stock_api():
    """pygeoapi's ``API``, built once per worker process from the JSON configuration ``ogc.py`` wrote."""
    global _api
    if _api is None:
        from pygeoapi.api import API
        from pygeoapi.openapi import get_oas

        path = os.environ.get(CONFIG_VARIABLE)
        if not path:
            raise RuntimeError(f"set {CONFIG_VARIABLE} to the pygeoapi configuration that tests/bench/ogc.py writes")
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
        _api = API(config, get_oas(config))
    return _api


if __name__ == "__main__":  # run_all.py runs every script here; this one is a helper of ogc.py
    print("ogc_stock_app.py is served by tests/bench/ogc.py (the stock baseline); nothing to run on its own")
    sys.exit(0)
