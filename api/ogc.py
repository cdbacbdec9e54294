"""The OGC API at ``/ogc/``: pygeoapi mounted inside Django, its ``API`` built once per process.

URLs are answered as linked, with and without a trailing slash, never redirected
(QGIS misbehaves on redirects; see shared/QGIS-CLIENT.md).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.static import serve

_lock = threading.Lock()
_built_api = None


def _api():
    """The pygeoapi API for this process, built on first use (normally at worker start)."""
    global _built_api
    if _built_api is None:
        with _lock:
            if _built_api is None:
                _built_api = _build_api()
    return _built_api


def _build_api():
    """A pygeoapi API whose configuration is generated from the layer catalogue."""
    from pygeoapi.api import API
    from pygeoapi.openapi import get_oas

    from api.config import OnemapSettings
    from layers.config import pygeoapi_config

    settings = OnemapSettings.from_env()
    base_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    config = pygeoapi_config(base_url=f"{base_url.rstrip('/')}/ogc")
    return API(config, get_oas(config))


def warm_up() -> None:
    """Build the API now (at start-up) rather than on the first request."""
    _api()


def _execute(function, request: HttpRequest, *args, skip_valid_check: bool = False) -> HttpResponse:
    from pygeoapi.api import APIRequest, apply_gzip

    api = _api()
    api_request = APIRequest.from_django(request, api.locales)
    if not skip_valid_check and not api_request.is_valid():
        headers, status, content = api.get_format_exception(api_request)
    else:
        headers, status, content = function(api, api_request, *args)
        content = apply_gzip(headers, content)
    response = HttpResponse(content, status=status)
    for key, value in headers.items():
        response[key] = value
    return response


def _only(*methods):
    allowed = set(methods) | {"HEAD", "OPTIONS"}

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method == "OPTIONS":
                response = HttpResponse(status=204)
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            if request.method not in allowed:
                response = HttpResponse(status=405)
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            return view(request, *args, **kwargs)

        return csrf_exempt(wrapper)

    return decorate


@_only("GET")
def landing_page(request):
    import pygeoapi.api as core

    return _execute(core.landing_page, request)


@_only("GET")
def openapi(request):
    import pygeoapi.api as core

    return _execute(core.openapi_, request)


@_only("GET")
def conformance(request):
    import pygeoapi.api as core

    return _execute(core.conformance, request)


@_only("GET")
def collections(request, collection_id: str | None = None):
    import pygeoapi.api as core

    if collection_id is None:
        return _execute(core.describe_collections, request)
    return _execute(core.describe_collections, request, collection_id)


@_only("GET")
def queryables(request, collection_id: str):
    import pygeoapi.api.itemtypes as items

    return _execute(items.get_collection_queryables, request, collection_id)


@_only("GET")
def schema(request, collection_id: str):
    import pygeoapi.api as core

    return _execute(core.get_collection_schema, request, collection_id)


@_only("GET")
def collection_items(request, collection_id: str):
    import pygeoapi.api.itemtypes as items

    return _execute(items.get_collection_items, request, collection_id, skip_valid_check=True)


@_only("GET")
def collection_item(request, collection_id: str, item_id: str):
    import pygeoapi.api.itemtypes as items

    return _execute(items.get_collection_item, request, collection_id, item_id)


def _both(route: str, view, name: str):
    """The route with and without a trailing slash, both answered directly."""
    return [path(route, view, name=name), path(route + "/", view, name=name + "-slash")]


def _static_root() -> str:
    import pygeoapi

    return str(Path(pygeoapi.__file__).parent / "static")


urlpatterns = [
    path("", landing_page, name="ogc-landing"),
    # pygeoapi's HTML pages link their stylesheet and images under /ogc/static/
    re_path(r"^static/(?P<path>.+)$", serve, {"document_root": _static_root()}, name="ogc-static"),
    *_both("openapi", openapi, "ogc-openapi"),
    *_both("conformance", conformance, "ogc-conformance"),
    *_both("collections", collections, "ogc-collections"),
    *_both("collections/<str:collection_id>", collections, "ogc-collection"),
    *_both("collections/<str:collection_id>/queryables", queryables, "ogc-queryables"),
    *_both("collections/<str:collection_id>/schema", schema, "ogc-schema"),
    *_both("collections/<str:collection_id>/items", collection_items, "ogc-items"),
    *_both("collections/<str:collection_id>/items/<str:item_id>", collection_item, "ogc-item"),
]
